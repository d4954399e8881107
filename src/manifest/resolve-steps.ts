import type { Diagnostic } from "../errors.js";
import { compileWhere, type Where, WhereSyntaxError } from "../template/where.js";
import { canonicalJson } from "../util/canonical-json.js";
import { suggestion } from "../util/did-you-mean.js";
import { hashValue } from "../util/hash.js";
import { compileJsonSchema } from "../util/json-schema.js";
import { RESERVED_NAMES } from "./resolve-dimensions.js";
import { checkEndpoints, mergeModel, resolveModel } from "./resolve-model.js";
import { DEFAULT_RUN_TIMEOUT_S, type LoadedModule } from "./run-modules.js";
import { BUILTIN_NAMES, type RawDimension, type RawModel, type RawStep, STEP_KINDS } from "./schema.js";
import type { YamlSource } from "./source.js";
import { checkTemplate, type Fields, fieldProblem, type Scope } from "./template-check.js";
import type { MessageTemplate, Step, StepParts } from "./types.js";

/**
 * Names every template can read: dimensions (and glob names), nonce, index, id. Taken from the raw
 * manifest, so that a dimension with its own error does not cascade into "unknown variable".
 */
export function baseNames(raw: Record<string, RawDimension>): string[] {
  const names = [...BUILTIN_NAMES];
  for (const [name, spec] of Object.entries(raw)) {
    names.push(name);
    if (!Array.isArray(spec) && "glob" in spec) names.push(`${name}_name`);
  }
  return names;
}

/** Ids of the steps whose output can be read by name. */
export function valueStepIds(raw: RawStep[]): string[] {
  return raw.filter((s) => s.generate || s.map || s.run).map((s) => s.id);
}

export function resolveSteps(
  src: YamlSource,
  rawSteps: RawStep[],
  rawModel: RawModel | undefined,
  rawDims: Record<string, RawDimension>,
  modules: ReadonlyMap<string, LoadedModule>,
  errors: Diagnostic[],
  /** The fields of dimensions; each value step's are added as it becomes readable. */
  fields: Map<string, Fields> = new Map(),
  fieldReads: Set<string> = new Set(),
): Step[] {
  const dimNames = new Set(baseNames(rawDims).filter((n) => !BUILTIN_NAMES.includes(n)));
  checkEndpoints(src, ["model"], rawModel, rawModel?.endpoint_id, errors);
  const ids = new Map<string, number>();
  rawSteps.forEach((s, i) => {
    if (ids.has(s.id))
      errors.push(
        src.at(
          ["steps", i, "id"],
          `duplicate step id '${s.id}' (also steps[${ids.get(s.id)}])`,
          "every step needs its own id: outputs and later steps read steps by id",
        ),
      );
    else if (dimNames.has(s.id) || RESERVED_NAMES.has(s.id))
      errors.push(
        src.at(
          ["steps", i, "id"],
          dimNames.has(s.id)
            ? `step id '${s.id}' is already the name of a dimension (or a glob dimension's file name)`
            : `step id '${s.id}' is ${BUILTIN_NAMES.includes(s.id) ? "already the name of a built-in variable" : "a name JavaScript reserves"}`,
          "rename the step",
        ),
      );
    else ids.set(s.id, i);
  });

  const readable = new Set(baseNames(rawDims));
  const steps: Step[] = [];
  rawSteps.forEach((raw, index) => {
    const path = ["steps", index];
    const kinds = STEP_KINDS.filter((k) => raw[k] !== undefined);
    if (kinds.length !== 1) {
      errors.push(
        src.at(
          path,
          kinds.length ? `a step has one kind, this one has ${kinds.join(" and ")}` : `step '${raw.id}' has no kind`,
          `give it exactly one of: ${STEP_KINDS.join(", ")}`,
        ),
      );
      return;
    }
    const later = new Map<string, string>();
    rawSteps.forEach((s, j) => {
      if (j >= index) later.set(s.id, j === index ? "is this step itself" : `is a later step (steps[${j}]); a step can only read steps before it`);
    });
    const scope: Scope = { names: readable, later, fields, fieldReads };
    const step = resolveStep(src, raw, index, rawModel, scope, modules, errors);
    if (step) steps.push(step);
    if (raw.generate || raw.map || raw.run) {
      readable.add(raw.id);
      fields.set(raw.id, raw.generate?.json_schema ? { kind: "json", schema: raw.generate.json_schema } : { kind: "text" });
    }
  });
  return steps;
}

function resolveStep(
  src: YamlSource,
  raw: RawStep,
  index: number,
  rawModel: RawModel | undefined,
  scope: Scope,
  modules: ReadonlyMap<string, LoadedModule>,
  errors: Diagnostic[],
): Step | undefined {
  const path = ["steps", index];
  const field = (f: string, kind: string) => {
    const rows = scope.fields?.get(f);
    if (rows?.kind === "rows") {
      errors.push(
        src.at(
          [...path, kind, "field"],
          `'${f}' is a rows dimension: a ${kind} step reads text`,
          `filter, map and dedupe read text (a step's output, a plain dimension); a run step can return the column: export default (v) => v.${f}.${rows.columns[0]}`,
        ),
      );
      return false;
    }
    if (scope.names.has(f)) return true;
    const why = scope.later.get(f);
    errors.push(
      src.at(
        [...path, kind, "field"],
        why ? `'${f}' ${why}` : `unknown field '${f}'`,
        suggestion(f, scope.names) ?? `readable here: ${[...scope.names].sort().join(", ")}`,
      ),
    );
    return false;
  };
  if (raw.generate) {
    const g = raw.generate;
    const gp = [...path, "generate"];
    if ((g.prompt === undefined) === (g.messages === undefined)) {
      errors.push(
        src.at(
          gp,
          g.prompt === undefined ? "a generate step needs prompt: or messages:" : "give prompt: or messages:, not both",
          "prompt: is one user message; messages: is a list of {role, content}",
        ),
      );
      return undefined;
    }
    if (g.system !== undefined && g.messages) errors.push(src.at([...gp, "system"], "system: goes with prompt:; with messages:, add a {role: system} message"));
    const messages: MessageTemplate[] = [];
    let ok = true;
    const add = (role: MessageTemplate["role"], p: (string | number)[], text: string) => {
      const t = checkTemplate(src, p, text, scope, errors);
      if (t) messages.push({ role, template: t });
      else ok = false;
    };
    if (g.system !== undefined) add("system", [...gp, "system"], g.system);
    if (g.prompt !== undefined) add("user", [...gp, "prompt"], g.prompt);
    for (const [i, m] of (g.messages ?? []).entries()) add(m.role, [...gp, "messages", i, "content"], m.content);
    const merged = mergeModel(rawModel, g.model);
    const model = resolveModel(merged);
    checkEndpoints(src, [...gp, "model"], g.model, merged.endpoint_id, errors);
    if (model.nameMissing) {
      errors.push(
        src.at(
          g.model ? [...gp, "model"] : rawModel ? ["model"] : gp,
          "no model name",
          "set model.name (e.g. gpt-4o-mini) at the top level or in the step's model:",
        ),
      );
      ok = false;
    }
    if (merged.api === "completions" && (g.messages || g.system !== undefined || g.json_schema)) {
      errors.push(
        src.at(
          g.messages ? [...gp, "messages"] : g.system !== undefined ? [...gp, "system"] : [...gp, "json_schema"],
          `api: completions sends one prompt string: ${g.messages ? "messages:" : g.system !== undefined ? "system:" : "json_schema:"} has no place in it`,
          "write the whole text in prompt: (a base model continues it), or use api: chat",
        ),
      );
      ok = false;
    }
    // Where a model key was written: the step's model: if it sets it there, else the top level's.
    const modelKey = (k: "mode" | "batch_above") => (g.model?.[k] !== undefined ? [...gp, "model", k] : ["model", k]);
    if (merged.batch_above !== undefined && merged.mode !== "auto") {
      errors.push(src.at(modelKey("batch_above"), "batch_above: is for mode: auto", "add mode: auto (batch above that many requests), or remove batch_above"));
      ok = false;
    }
    if ((merged.mode === "batch" || merged.mode === "auto") && merged.api === "completions") {
      errors.push(
        src.at(
          modelKey("mode"),
          `mode: ${merged.mode} sends chat requests through the Batch API; api: completions is not supported there`,
          "use mode: direct (the default) with api: completions",
        ),
      );
      ok = false;
    }
    try {
      canonicalJson(merged.extra_body ?? {});
    } catch (err) {
      errors.push(
        src.at(
          g.model?.extra_body ? [...gp, "model", "extra_body"] : ["model", "extra_body"],
          `extra_body: ${(err as Error).message}`,
          "extra_body is sent as JSON: finite numbers, strings, booleans, lists and mappings",
        ),
      );
      ok = false;
    }
    if (g.json_schema) {
      try {
        compileJsonSchema(g.json_schema);
      } catch (err) {
        errors.push(
          src.at(
            [...gp, "json_schema"],
            `invalid JSON Schema: ${(err as Error).message}`,
            "json_schema: is a JSON Schema object, e.g. { type: object, properties: { title: { type: string } }, required: [title] }",
          ),
        );
        ok = false;
      }
    }
    if (!ok) return undefined;
    const { nameMissing: _, ...cfg } = model;
    return {
      kind: "generate",
      id: raw.id,
      index,
      messages,
      model: cfg,
      jsonSchema: g.json_schema,
      ...(g.on_empty === "retry" ? { retryEmpty: true as const } : {}),
      ...definition({
        kind: "generate",
        template: hashValue(messages.map((m) => [m.role, m.template.source])),
        provider: cfg.provider,
        model: cfg.name,
        endpoint: cfg.endpoint,
        params: cfg.params,
        extra_body: Object.keys(cfg.extraBody).length ? hashValue(cfg.extraBody) : null,
        json_schema: g.json_schema ? hashValue(g.json_schema) : null,
        // Only when set: a manifest without it keeps the definition it always had.
        ...(g.on_empty === "retry" ? { on_empty: "retry" } : {}),
        ...(cfg.api ? { api: cfg.api } : {}),
      }),
    };
  }
  if (raw.filter) {
    const f = raw.filter;
    const fp = [...path, "filter"];
    const textTests = (["min_chars", "max_chars", "must_match", "must_not_match", "drop_truncated"] as const).filter((k) => f[k] !== undefined);
    if (f.field === undefined) {
      if (f.where === undefined || textTests.length) {
        errors.push(
          src.at(
            fp,
            f.where === undefined
              ? "a filter needs field: (with min_chars, must_match...) or where:"
              : `${textTests.join(", ")} test a field: name it with field:`,
            'e.g. { field: story, min_chars: 200 } or { where: "judge.score >= 4" }',
          ),
        );
        return undefined;
      }
    } else if (!field(f.field, "filter")) return undefined;
    const where = f.where === undefined ? undefined : whereOf(src, [...fp, "where"], f.where, scope, errors);
    if (where === null) return undefined;
    const mustMatch = regexes(src, [...path, "filter", "must_match"], f.must_match, errors);
    const mustNotMatch = regexes(src, [...path, "filter", "must_not_match"], f.must_not_match, errors);
    if (f.min_chars !== undefined && f.max_chars !== undefined && f.min_chars > f.max_chars)
      errors.push(src.at([...path, "filter", "min_chars"], `min_chars ${f.min_chars} is above max_chars ${f.max_chars}`, "every sample would be dropped"));
    if (!mustMatch || !mustNotMatch) return undefined;
    return {
      kind: "filter",
      id: raw.id,
      index,
      field: f.field,
      minChars: f.min_chars,
      maxChars: f.max_chars,
      mustMatch,
      mustNotMatch,
      dropTruncated: f.drop_truncated ?? false,
      ...(where ? { where } : {}),
      ...definition({ kind: "filter", ...f }),
    };
  }
  if (raw.map) {
    const m = raw.map;
    if (!field(m.field, "map")) return undefined;
    const replace: { pattern: RegExp; with: string }[] = [];
    let ok = true;
    m.replace?.forEach((r, i) => {
      const re = compileRegex(src, [...path, "map", "replace", i, "pattern"], r.pattern, "g" + (r.flags ?? ""), errors);
      if (re) replace.push({ pattern: re, with: r.with });
      else ok = false;
    });
    if (!ok) return undefined;
    return { kind: "map", id: raw.id, index, field: m.field, extract: m.extract, replace, trim: m.trim ?? false, ...definition({ kind: "map", ...m }) };
  }
  if (raw.run) {
    const mod = modules.get(raw.run.module);
    if (!mod) return undefined; // its load error is already reported
    return {
      kind: "run",
      id: raw.id,
      index,
      module: raw.run.module,
      url: mod.url,
      timeoutS: raw.run.timeout_s ?? DEFAULT_RUN_TIMEOUT_S,
      // The module's whole import graph, and not its timeout, which cannot change its text.
      ...definition({ kind: "run", module: raw.run.module, ...mod.identity }),
    };
  }
  const d = raw.dedupe!;
  if (!field(d.field, "dedupe")) return undefined;
  const minhash = d.method === "minhash";
  for (const k of ["threshold", "shingle"] as const) {
    if (d[k] !== undefined && !minhash)
      errors.push(src.at([...path, "dedupe", k], `${k}: is for method minhash`, "add method: minhash for near-duplicates, or remove it"));
  }
  return {
    kind: "dedupe",
    id: raw.id,
    index,
    field: d.field,
    minhash: minhash ? { threshold: d.threshold ?? 0.85, shingle: d.shingle ?? 3 } : undefined,
    ignoreCase: d.ignore_case ?? true,
    ignoreWhitespace: d.ignore_whitespace ?? true,
    ...definition({ kind: "dedupe", ...d }),
  };
}

/** A step's definition parts (as the lock records them) and their hash. */
function definition(parts: Record<string, unknown>): { parts: StepParts; defHash: string } {
  // Through JSON: what the lock will hold, so a comparison with a lock read back is exact.
  const clean = JSON.parse(canonicalJson(parts)) as StepParts;
  return { parts: clean, defHash: hashValue(clean) };
}

/** The compiled condition, or null (with the error recorded) when it cannot be used. */
function whereOf(src: YamlSource, path: (string | number)[], source: string, scope: Scope, errors: Diagnostic[]): Where | null {
  let where: Where;
  try {
    where = compileWhere(source);
  } catch (err) {
    if (!(err instanceof WhereSyntaxError)) throw err;
    errors.push(
      src.at(
        path,
        err.message,
        `strings take double quotes: genre == "noir"; a name with - (or a keyword) takes single quotes: 'my-judge.score'; not (x) with a space; functions: len, words, lower, contains...`,
      ),
    );
    return null;
  }
  let ok = true;
  // A rows dimension's table is at hand: a column that no row has is found now, as in templates.
  for (const [name, ...rest] of where.reads) {
    const f = scope.fields?.get(name!);
    if (f?.kind !== "rows" || !scope.names.has(name!)) continue;
    const problem = rest.length
      ? fieldProblem(name!, rest, f)
      : { message: `'${name}' is a row of ${f.file}: name the column to read, e.g. ${name}.${f.columns[0]}`, hint: `its columns: ${f.columns.join(", ")}` };
    if (!problem) continue;
    ok = false;
    errors.push(src.at(path, problem.message, problem.hint));
  }
  for (const name of where.names) {
    if (scope.names.has(name)) continue;
    ok = false;
    const why = scope.later.get(name);
    errors.push(
      src.at(
        path,
        why ? `'${name}' ${why}` : `unknown name '${name}'`,
        suggestion(name, scope.names) ??
          `readable here: ${[...scope.names].sort().join(", ")}${[...scope.names].some((n) => /[^\w$]/.test(n)) ? "; a name with - goes in single quotes: 'my-judge.score'" : ""}`,
      ),
    );
  }
  return ok ? where : null;
}

function regexes(src: YamlSource, path: (string | number)[], patterns: string | string[] | undefined, errors: Diagnostic[]): RegExp[] | undefined {
  if (patterns === undefined) return [];
  const list = Array.isArray(patterns) ? patterns : [patterns];
  const out: RegExp[] = [];
  list.forEach((p, i) => {
    const re = compileRegex(src, Array.isArray(patterns) ? [...path, i] : path, p, "", errors);
    if (re) out.push(re);
  });
  return out.length === list.length ? out : undefined;
}

function compileRegex(src: YamlSource, path: (string | number)[], pattern: string, flags: string, errors: Diagnostic[]): RegExp | undefined {
  try {
    return new RegExp(pattern, flags);
  } catch (err) {
    errors.push(
      src.at(
        path,
        `invalid regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, "")}`,
        "JavaScript regex syntax; in YAML, single-quote patterns with backslashes: '\\d+'",
      ),
    );
    return undefined;
  }
}
