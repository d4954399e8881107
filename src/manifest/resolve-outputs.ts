import { isAbsolute, relative, resolve } from "node:path";
import type { Diagnostic } from "../errors.js";
import type { CompiledTemplate } from "../template/engine.js";
import { suggestion } from "../util/did-you-mean.js";
import { fractionsOf, outputTargets } from "./output-targets.js";
import type { RawOutput } from "./schema.js";
import type { YamlSource } from "./source.js";
import { checkTemplate, type Fields, type Scope } from "./template-check.js";
import type { Output, OutputFormat } from "./types.js";

const REQUIRED: Record<OutputFormat, (keyof RawOutput)[]> = {
  "openai-chat": ["prompt", "completion"],
  "prompt-completion": ["prompt", "completion"],
  jsonl: ["record"],
  files: ["prompt", "completion"],
};

/** Outputs with their templates checked. What they must not overwrite is output-collisions.ts's. */
export function resolveOutputs(
  src: YamlSource,
  raw: RawOutput | RawOutput[],
  dir: string,
  names: ReadonlySet<string>,
  dimensions: readonly string[],
  errors: Diagnostic[],
  fields?: ReadonlyMap<string, Fields>,
  fieldReads?: Set<string>,
): Output[] {
  const list = Array.isArray(raw) ? raw : [raw];
  const base: (string | number)[] = Array.isArray(raw) ? ["output"] : [];
  const seen = new Map<string, number>();
  const scope: Scope = { names, later: new Map(), fields, fieldReads };
  const outputs: Output[] = [];
  list.forEach((o, i) => {
    const path = Array.isArray(raw) ? [...base, i] : ["output"];
    const format: OutputFormat = o.format ?? "openai-chat";
    let ok = true;
    for (const key of REQUIRED[format]) {
      if (o[key] === undefined) {
        errors.push(
          src.at(
            path,
            `format ${format} needs ${key}:`,
            key === "record"
              ? "record: maps field names to templates, e.g. { text: '{{ expanded }}' }"
              : `${key}: is a template, e.g. '{{ ${key === "prompt" ? "genre" : "expanded"} }}'`,
          ),
        );
        ok = false;
      }
    }
    if (o.record && format !== "jsonl") errors.push(src.at([...path, "record"], `record: is for format jsonl, not ${format}`));
    if (o.system !== undefined && format !== "openai-chat") errors.push(src.at([...path, "system"], `system: is for format openai-chat, not ${format}`));
    if (o.card !== undefined && format === "files")
      errors.push(
        src.at([...path, "card"], "card: is for JSONL formats", "a files output is never in the dataset card: datasets.load_dataset cannot read its pairs"),
      );
    if (o.name !== undefined && format !== "files")
      errors.push(src.at([...path, "name"], `name: is for format files, not ${format}`, "other formats write one file at path:"));
    const abs = resolve(dir, o.path);
    const rel = relative(dir, abs);
    if (rel.startsWith("..") || isAbsolute(rel))
      errors.push(src.at([...path, "path"], `output path ${o.path} is outside the project folder`, "write outputs under the manifest's folder, e.g. dist/"));
    else if (rel === "" && format !== "files")
      errors.push(
        src.at(
          [...path, "path"],
          `output path ${o.path} is the project folder itself`,
          "name a file (or, for format files, a folder) under it, e.g. dist/data.jsonl",
        ),
      );
    // `files` writes prompts/ and completions/ inside the folder it names: naming one of them
    // would nest it (prompts/prompts/), which is never the tutorial's layout.
    const last = rel.split(/[/\\]/).pop();
    if (format === "files" && (last === "prompts" || last === "completions"))
      errors.push(
        src.at(
          [...path, "path"],
          `output path ${o.path} would write ${o.path}/prompts/ and ${o.path}/completions/`,
          "path: names the folder that holds prompts/ and completions/; for them at the project root, write path: .",
        ),
      );
    // Every file an output writes (one per split) must be its own: a split of one output may not
    // land on another output's path.
    for (const t of outputTargets({ path: o.path, absPath: abs, format, split: fractionsOf(o.split) })) {
      const other = seen.get(t.abs);
      if (other !== undefined)
        errors.push(
          src.at(
            [...path, "path"],
            `output[${i}] would write ${relative(dir, t.abs)}, which output[${other}] writes too`,
            "give each output (and each split of it) its own path",
          ),
        );
      else seen.set(t.abs, i);
    }
    const tpl = (key: "system" | "prompt" | "completion" | "name"): CompiledTemplate | undefined => {
      const text = o[key];
      if (text === undefined) return undefined;
      const t = checkTemplate(src, [...path, key], text, scope, errors);
      if (!t) ok = false;
      return t;
    };
    const record: [string, CompiledTemplate][] = [];
    for (const [field, text] of Object.entries(o.record ?? {})) {
      const t = checkTemplate(src, [...path, "record", field], text, scope, errors);
      if (t) record.push([field, t]);
      else ok = false;
    }
    const split = fractionsOf(o.split);
    let groupBy: Output["groupBy"];
    if (o.split && split) {
      for (const [name] of split)
        if (!SPLIT_NAME.test(name)) {
          errors.push(
            src.at([...path, "split", name], `'${name}' is not a split name`, "a split is named like a variable: letters, digits and _", { key: true }),
          );
          ok = false;
        }
      if (split.length === 0) {
        errors.push(src.at([...path, "split"], "split: names no split", "e.g. split: { train: 0.9, validation: 0.1 }"));
        ok = false;
      }
      const sum = split.reduce((a, [, f]) => a + f, 0);
      if (split.length && Math.abs(sum - 1) > 1e-9) {
        errors.push(src.at([...path, "split"], `split fractions add up to ${+sum.toFixed(6)}, not 1`, "e.g. split: { train: 0.9, validation: 0.1 }"));
        ok = false;
      }
      if (o.split.group_by) {
        groupBy = resolveGroupBy(src, [...path, "split", "group_by"], o.split.group_by, dimensions, errors);
        if (!groupBy) ok = false;
      }
    }
    const out: Output = {
      path: rel === "" ? "." : rel.split("\\").join("/"),
      absPath: abs,
      format,
      system: tpl("system"),
      prompt: tpl("prompt"),
      completion: tpl("completion"),
      name: tpl("name"),
      record: o.record ? record : undefined,
      split,
      card: format !== "files" && o.card !== false,
      ...(groupBy && { groupBy }),
    };
    if (ok) outputs.push(out);
  });
  return outputs;
}

const SPLIT_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `group_by:` names declared dimensions, each once; sorted, since their order cannot matter. */
function resolveGroupBy(src: YamlSource, path: (string | number)[], raw: string[], dimensions: readonly string[], errors: Diagnostic[]): Output["groupBy"] {
  let ok = true;
  raw.forEach((name, i) => {
    if (!dimensions.includes(name)) {
      const hint = suggestion(name, dimensions) ?? `the dimensions are ${dimensions.map((d) => `'${d}'`).join(", ")}`;
      errors.push(src.at([...path, i], `group_by: '${name}' is not a dimension`, hint));
      ok = false;
    } else if (raw.indexOf(name) !== i) {
      errors.push(src.at([...path, i], `group_by: '${name}' is listed twice`));
      ok = false;
    }
  });
  if (!ok) return undefined;
  const names = [...new Set(raw)].sort();
  return { names, indexes: names.map((n) => dimensions.indexOf(n)) };
}
