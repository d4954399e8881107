import { basename, extname, relative, resolve } from "node:path";
import { isScalar } from "yaml";
import type { Diagnostic } from "../errors.js";
import { suggestion } from "../util/did-you-mean.js";
import { hash64 } from "../util/hash.js";
import { OUTSIDE_HINT, type Roots, readInput } from "./confine.js";
import { globFiles } from "./glob-files.js";
import { resolveRows } from "./resolve-rows.js";
import { BUILTIN_NAMES, MAX_DIMENSIONS, NAME_PATTERN, type RawDimension, type RawValueItem, UNUSABLE_NAMES } from "./schema.js";
import type { YamlSource } from "./source.js";
import type { Dimension, DimValue, ManifestInputs } from "./types.js";

/** Names a dimension or step may not take. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([...BUILTIN_NAMES, ...UNUSABLE_NAMES]);

/** Read every dimension's values: inline lists, files, globs, rows of a table and conditional lists. */
export async function resolveDimensions(
  src: YamlSource,
  raw: Record<string, RawDimension>,
  dir: string,
  roots: Roots,
  errors: Diagnostic[],
  inputs?: ManifestInputs,
): Promise<Dimension[]> {
  const out: Dimension[] = [];
  const names = Object.keys(raw);
  if (names.length === 0) errors.push(src.at(["dimensions"], "no dimensions", "declare at least one, e.g. genre: [comedy, horror]"));
  if (names.length > MAX_DIMENSIONS) {
    errors.push(
      src.at(
        ["dimensions", names[MAX_DIMENSIONS]!],
        `${names.length} dimensions: at most ${MAX_DIMENSIONS} are allowed`,
        "a dimension is something the prompts vary; values of one thing belong in one dimension's list",
        { key: true },
      ),
    );
    return out;
  }
  for (const name of names) {
    const path = ["dimensions", name];
    if (!NAME_PATTERN.test(name)) {
      errors.push(
        src.at(path, `'${name}' is not a usable dimension name`, "use letters, digits and _, starting with a letter: templates read it as {{ name }}", {
          key: true,
        }),
      );
      continue;
    }
    if (RESERVED_NAMES.has(name)) {
      const what = UNUSABLE_NAMES.includes(name) ? "a name JavaScript reserves" : "a built-in template variable";
      errors.push(src.at(path, `'${name}' is ${what}`, "rename the dimension", { key: true }));
      continue;
    }
    const spec = raw[name]!;
    const base = name.endsWith("_name") ? name.slice(0, -5) : undefined;
    const parent = base !== undefined ? raw[base] : undefined;
    if (parent && !Array.isArray(parent) && "glob" in parent) {
      errors.push(
        src.at(path, `'${name}' is already the file name of glob dimension ${base}`, `rename this dimension; {{ ${name} }} reads ${base}'s file names`, {
          key: true,
        }),
      );
      continue;
    }
    const dim = await resolveOne(src, name, spec, dir, roots, out, errors, inputs);
    if (dim) out.push(dim);
  }
  return out;
}

async function resolveOne(
  src: YamlSource,
  name: string,
  spec: RawDimension,
  dir: string,
  roots: Roots,
  earlier: Dimension[],
  errors: Diagnostic[],
  inputs?: ManifestInputs,
): Promise<Dimension | undefined> {
  const path = ["dimensions", name];
  if (Array.isArray(spec)) {
    const values = inlineValues(src, path, spec, errors);
    if (!values) return undefined;
    return { name, kind: "list", values };
  }
  if ("file" in spec) {
    const file = resolve(dir, spec.file);
    const read = await readInput(file, spec.file, roots, `the path is relative to the manifest's folder (${relative(process.cwd(), dir) || "."})`);
    if ("problem" in read) {
      errors.push(src.at([...path, "file"], read.problem, read.hint));
      return undefined;
    }
    const text = read.text;
    if (inputs) inputs.files[file] = hash64(text);
    const values: DimValue[] = [];
    const seen = new Map<string, number>();
    text.split(/\r?\n/).forEach((line, i) => {
      const v = line.trim();
      if (!v || v.startsWith("#")) return;
      const first = seen.get(v);
      if (first !== undefined) {
        errors.push(
          src.at(
            [...path, "file"],
            `${spec.file}:${i + 1}: value '${v}' already appears on line ${first}`,
            "each value may appear once; a repeated value would be the same sample twice (use combine.repeat for more samples)",
          ),
        );
        return;
      }
      seen.set(v, i + 1);
      values.push({ key: v, text: v, weight: 1 });
    });
    if (values.length === 0) {
      errors.push(src.at([...path, "file"], `${spec.file} has no values`, "one value a line; blank lines and lines starting with # are skipped"));
      return undefined;
    }
    return { name, kind: "file", values };
  }
  if ("glob" in spec) return resolveGlob(src, name, spec.glob, dir, roots, errors, inputs);
  if ("rows" in spec) return resolveRows(src, name, spec, dir, roots, errors, inputs);
  // Conditional on a parent declared earlier, so expansion can follow declaration order.
  const parent = earlier.find((d) => d.name === spec.by);
  if (!parent) {
    const known = earlier.map((d) => d.name);
    errors.push(
      src.at(
        [...path, "by"],
        `'${spec.by}' is not a dimension declared before '${name}'`,
        suggestion(spec.by, known) ?? "declare the parent dimension above this one",
      ),
    );
    return undefined;
  }
  const parentKeys = new Set(parent.values.map((v) => v.key));
  const byValue = new Map<string, DimValue[]>();
  for (const [pv, list] of Object.entries(spec.values)) {
    if (!parentKeys.has(pv)) {
      errors.push(
        src.at(
          [...path, "values", pv],
          `'${pv}' is not a value of ${parent.name}`,
          suggestion(pv, parentKeys) ?? `values of ${parent.name}: ${[...parentKeys].join(", ")}`,
          { key: true },
        ),
      );
      continue;
    }
    const values = inlineValues(src, [...path, "values", pv], list, errors);
    if (values) byValue.set(pv, values);
  }
  const fallback = spec.default ? inlineValues(src, [...path, "default"], spec.default, errors) : undefined;
  const uncovered = [...parentKeys].filter((k) => !Object.hasOwn(spec.values, k));
  if (uncovered.length && !fallback) {
    errors.push(
      src.at(
        [...path, "values"],
        `no values for ${parent.name} ${uncovered.map((u) => `'${u}'`).join(", ")}`,
        "list values for every parent value, or add `default: [...]`",
      ),
    );
    return undefined;
  }
  for (const k of uncovered) byValue.set(k, fallback!);
  const all = new Map<string, DimValue>();
  for (const list of byValue.values()) for (const v of list) all.set(v.key, v);
  return { name, kind: "conditional", values: [...all.values()], by: parent.name, byValue };
}

async function resolveGlob(
  src: YamlSource,
  name: string,
  pattern: string,
  dir: string,
  roots: Roots,
  errors: Diagnostic[],
  inputs?: ManifestInputs,
): Promise<Dimension | undefined> {
  const path = ["dimensions", name, "glob"];
  const { files, outside, loops } = await globFiles(pattern, dir, roots);
  inputs?.globs.push({ pattern, cwd: dir, roots, matches: files });
  const shown = (p: string) => {
    const rel = relative(dir, p);
    return rel === "" ? "the project folder" : rel.startsWith("..") ? p : rel;
  };
  for (const o of outside) errors.push(src.at(path, `${pattern} reads ${shown(o)}, which is outside the project folder`, OUTSIDE_HINT));
  for (const l of loops)
    errors.push(
      src.at(
        path,
        `${pattern} goes round in a circle: ${shown(l.link)} leads back to ${shown(l.target)}, a folder it is inside`,
        "remove the link, or narrow the pattern so that it does not descend into it",
      ),
    );
  if (outside.length || loops.length) return undefined;
  if (files.length === 0) {
    errors.push(src.at(path, `no files match ${pattern}`, "the pattern is relative to the manifest's folder"));
    return undefined;
  }
  const values: DimValue[] = [];
  for (const f of files) {
    const read = await readInput(resolve(dir, f), f, roots);
    if ("problem" in read) {
      errors.push(src.at(path, read.problem, read.hint));
      continue;
    }
    if (inputs) inputs.files[resolve(dir, f)] = hash64(read.text);
    // Line endings normalised: a Windows checkout must build the same prompts (and cache keys).
    const text = read.text.replace(/\r\n?/g, "\n").replace(/\s+$/, "");
    values.push({ key: f, text, weight: 1, name: basename(f, extname(f)) });
  }
  return values.length === files.length ? { name, kind: "glob", values } : undefined;
}

/**
 * A value as the author wrote it: YAML reads `3.10` as the number 3.1 and `007` as 7, but a
 * dimension value is text for a prompt, so an unquoted number keeps its source spelling.
 */
function asWritten(src: YamlSource, path: (string | number)[], value: string | number | boolean): string {
  if (typeof value === "string") return value;
  const node = src.nodeAt(path);
  return isScalar(node) && typeof node.source === "string" && node.source !== "" ? node.source : String(value);
}

function inlineValues(src: YamlSource, path: (string | number)[], items: RawValueItem[], errors: Diagnostic[]): DimValue[] | undefined {
  if (items.length === 0) {
    errors.push(src.at(path, "empty dimension: it has no values", "give it at least one value, or remove it"));
    return undefined;
  }
  const values: DimValue[] = [];
  const seen = new Set<string>();
  let ok = true;
  items.forEach((item, i) => {
    const isObj = typeof item === "object" && item !== null;
    const text = asWritten(src, isObj ? [...path, i, "value"] : [...path, i], isObj ? item.value : item);
    const weight = isObj ? (item.weight ?? 1) : 1;
    if (seen.has(text)) {
      errors.push(src.at([...path, i], `value '${text}' appears twice`, "each value may appear once; use a weight, or combine.repeat, for more of it"));
      ok = false;
      return;
    }
    seen.add(text);
    values.push({ key: text, text, weight });
  });
  return ok ? values : undefined;
}
