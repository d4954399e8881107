import { isScalar, Scalar } from "yaml";
import type { Diagnostic } from "../errors.js";
import { type CompiledTemplate, compileTemplate, readPaths, renderTemplate, TemplateSyntaxError } from "../template/engine.js";
import { Structured } from "../template/structured.js";
import { suggestion } from "../util/did-you-mean.js";
import { formatPath, type KeyPath, type YamlSource } from "./source.js";

/** What a template at one place in the manifest may read. */
export interface Scope {
  /** Names readable here. */
  readonly names: ReadonlySet<string>;
  /** Names that exist but are not readable yet (later steps), with why. */
  readonly later: ReadonlyMap<string, string>;
  /** What the fields of a name are, where it has (or must not have) fields. */
  readonly fields?: ReadonlyMap<string, Fields>;
  /** Filled with every name some template reads a field of (their answers are parsed). */
  readonly fieldReads?: Set<string>;
}

/** The fields a name has, as far as a template check can know. */
export type Fields =
  /** A rows dimension's row: its columns, and every row with the line it starts on. */
  | {
      readonly kind: "rows";
      readonly file: string;
      readonly columns: readonly string[];
      readonly rows: readonly Readonly<Record<string, unknown>>[];
      readonly lines: readonly number[];
    }
  /** A rows dimension whose file could not be read: its own error says why, so reads are not checked. */
  | { readonly kind: "unread" }
  /** A generate step with a json_schema: the answer's fields, where the schema declares them. */
  | { readonly kind: "json"; readonly schema: Record<string, unknown> }
  /** A step whose answer is text. */
  | { readonly kind: "text" };

/** Properties Liquid itself gives a text or a list: reading them is not reading a field. */
const LIQUID_PROPERTIES = new Set(["size", "first", "last"]);

/**
 * Compile a template found at `path` and check every name it reads. Errors point into the
 * template text itself where the YAML scalar lets us map the offset.
 */
export function checkTemplate(src: YamlSource, path: KeyPath, source: string, scope: Scope, errors: Diagnostic[]): CompiledTemplate | undefined {
  let t: CompiledTemplate;
  try {
    const d = src.at(path, "");
    t = compileTemplate(source, `${d.file}:${d.line}:${d.col} ${d.path}`);
  } catch (err) {
    if (!(err instanceof TemplateSyntaxError)) throw err;
    errors.push(
      at(src, path, err.line, err.col, `template syntax: ${err.message}`, "Liquid syntax: {{ name }}, {{ name | upcase }}, {% if name %}...{% endif %}"),
    );
    return undefined;
  }
  let ok = true;
  for (const name of t.reads) {
    if (scope.names.has(name)) continue;
    ok = false;
    const why = scope.later.get(name);
    if (why) errors.push(atName(src, path, source, name, `'${name}' ${why}`, "a step can only read dimensions, nonce, index, id and the steps before it"));
    else
      errors.push(
        atName(src, path, source, name, `unknown variable '${name}'`, suggestion(name, scope.names) ?? `readable here: ${[...scope.names].sort().join(", ")}`),
      );
  }
  if (!ok) return undefined;
  const paths = readPaths(t);
  const said = new Set<string>();
  for (const [name, ...rest] of paths) {
    const f = scope.fields?.get(name as string);
    if (!f) continue;
    const problem = fieldProblem(name as string, rest, f);
    if (problem && !said.has(problem.message)) {
      said.add(problem.message);
      // Point at `seed.questoin`, not at the first `seed` (which may be read rightly before it).
      const dotted = typeof rest[0] === "string" ? `${name as string}.${rest[0]}` : "";
      const at = source.includes(dotted) && dotted ? dotted : (name as string);
      errors.push(atName(src, path, source, at, problem.message, problem.hint));
      ok = false;
    } else if (problem) continue;
    else if (rest.length && !(rest.length === 1 && LIQUID_PROPERTIES.has(rest[0] as string) && f.kind !== "rows")) scope.fieldReads?.add(name as string);
  }
  if (!ok) return undefined;
  // Every value a template sees is text (index is a number), so one render with stand-in text
  // finds what only rendering can: a filter given the wrong arguments, a property of a string.
  // Values with fields get stand-ins with the fields read; a path through a list index or a
  // variable cannot be stood in for, and its template is not probed.
  const probe: Record<string, unknown> = {};
  for (const name of scope.names) probe[name] = name === "index" ? 0 : "x";
  let guessable = true;
  for (const [name, ...rest] of paths) {
    const f = scope.fields?.get(name as string);
    if (!f || f.kind === "text" || (rest.length === 1 && LIQUID_PROPERTIES.has(rest[0] as string) && f.kind !== "rows")) continue;
    if (rest.some((seg) => typeof seg !== "string")) guessable = false;
    const had = probe[name as string];
    let stand: Structured;
    if (had instanceof Structured) stand = had;
    else {
      const value: Record<string, unknown> = {};
      if (f.kind === "rows") for (const c of f.columns) setOwn(value, c, "x");
      probe[name as string] = stand = new Structured("x", value, "row");
    }
    let cur = stand.value as Record<string, unknown>;
    rest.forEach((seg, i) => {
      if (typeof seg !== "string") return;
      if (i === rest.length - 1) {
        if (!Object.hasOwn(cur, seg)) setOwn(cur, seg, "x");
      } else {
        if (!Object.hasOwn(cur, seg) || typeof cur[seg] !== "object" || cur[seg] === null) setOwn(cur, seg, {});
        cur = cur[seg] as Record<string, unknown>;
      }
    });
  }
  if (!guessable) return t;
  try {
    renderTemplate({ ...t, where: undefined }, probe);
  } catch (err) {
    const cause = (err as { cause?: { token?: { getPosition?: () => [number, number] } } }).cause;
    const [line, col] = cause?.token?.getPosition?.() ?? [1, 1];
    errors.push(
      at(
        src,
        path,
        line,
        col,
        (err as Error).message.replace(/^template: /, "").replace(/, line:\d+, col:\d+$/, ""),
        "check the filter's arguments (e.g. append: 'text') and that every property read exists",
      ),
    );
    return undefined;
  }
  return t;
}

/** A field named like `__proto__` is data: an own property, never the prototype. */
function setOwn(o: Record<string, unknown>, k: string, v: unknown): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** How many segments of `path` lead somewhere in `v` (as Liquid reads them: own properties, list indexes). */
function reach(v: unknown, path: readonly (string | number)[]): number {
  let cur = v;
  for (const [i, seg] of path.entries()) {
    if ((typeof cur === "string" || Array.isArray(cur)) && typeof seg === "string" && LIQUID_PROPERTIES.has(seg)) return path.length;
    if (typeof cur !== "object" || cur === null) return i;
    if (Array.isArray(cur)) {
      if (typeof seg !== "number") return i;
      const at = seg < 0 ? cur.length + seg : seg;
      if (at < 0 || at >= cur.length) return i;
      cur = cur[at];
    } else {
      if (!Object.hasOwn(cur, seg)) return i;
      cur = (cur as Record<string, unknown>)[seg];
    }
  }
  return path.length;
}

/** Why reading `name` followed by `rest` is wrong, or undefined (a template's `{{ a.b }}`, a where's `a.b`). */
export function fieldProblem(name: string, rest: unknown[], f: Fields): { message: string; hint: string } | undefined {
  if (f.kind === "unread") return undefined;
  if (f.kind === "rows") {
    const cols = f.columns.join(", ");
    if (rest.length === 0)
      return {
        message: `'${name}' is a row of ${f.file}: name the column to read, e.g. {{ ${name}.${f.columns[0]} }}`,
        hint: `its columns: ${cols}`,
      };
    const col = rest[0];
    if (typeof col !== "string") return undefined;
    if (!f.columns.includes(col))
      return { message: `${f.file} has no column '${col}' (read as ${name}.${col})`, hint: suggestion(col, f.columns) ?? `its columns: ${cols}` };
    // The whole table is at hand: a path some row cannot follow is found now, not as a render
    // error that would stop the build midway.
    const literal: (string | number)[] = [];
    for (const seg of rest) {
      if (typeof seg !== "string" && typeof seg !== "number") break;
      literal.push(seg);
    }
    for (const [i, row] of f.rows.entries()) {
      const depth = reach(row, literal);
      if (depth === literal.length) continue;
      const shown = `${name}${literal
        .slice(0, depth + 1)
        .map((s) => (typeof s === "number" ? `[${s}]` : `.${s}`))
        .join("")}`;
      return {
        message:
          depth === 0
            ? `column '${col}' is missing from the row on line ${f.lines[i]} of ${f.file}`
            : `${shown} is missing from the row on line ${f.lines[i]} of ${f.file}`,
        hint: "give every row what the template reads (null for none), or read something else",
      };
    }
    return undefined;
  }
  if (rest.length === 0) return undefined;
  if (rest.length === 1 && LIQUID_PROPERTIES.has(rest[0] as string)) return undefined;
  if (f.kind === "text")
    return {
      message: `step '${name}' answers with text, which has no field '${String(rest[0])}'`,
      hint: `read {{ ${name} }}, or give step ${name} a json_schema: its answer's fields are read as {{ ${name}.field }}`,
    };
  let schema: unknown = f.schema;
  let walked = name;
  for (const seg of rest) {
    if (typeof schema !== "object" || schema === null) return undefined;
    const sch = schema as Record<string, unknown>;
    if (typeof seg === "number") {
      if (typeof sch.items !== "object" || sch.items === null) return undefined;
      schema = sch.items;
      walked += `[${seg}]`;
      continue;
    }
    if (typeof seg !== "string") return undefined;
    const props = sch.properties;
    // A schema that does not list properties (additionalProperties, $ref, anyOf...) is not second-guessed.
    if (typeof props !== "object" || props === null) return undefined;
    if (!Object.hasOwn(props, seg)) {
      const known = Object.keys(props);
      return {
        message: `step ${name}'s json_schema has no field '${seg}'${walked !== name ? ` in ${walked}` : ""}`,
        hint: suggestion(seg, known) ?? `its properties: ${known.join(", ")}`,
      };
    }
    // A field the schema lets an answer leave out would fail the render of that answer's sample,
    // and a render error stops the whole build: only required fields are readable.
    if (!Array.isArray(sch.required) || !sch.required.includes(seg))
      return {
        message: `${walked}.${seg} may be missing from an answer: step ${name}'s json_schema does not list '${seg}' under required`,
        hint: `add it to required: [${[...(Array.isArray(sch.required) ? sch.required : []), seg].join(", ")}] (strict structured output requires every property anyway)`,
      };
    schema = (props as Record<string, unknown>)[seg];
    walked += `.${seg}`;
  }
  return undefined;
}

/**
 * Point at the name where a tag reads it. Searching the scalar's raw source text (not its parsed
 * value) keeps the column right in folded, multi-line and escaped scalars.
 */
function atName(src: YamlSource, path: KeyPath, source: string, name: string, message: string, hint: string): Diagnostic {
  const node = src.nodeAt(path);
  const esc = name.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  const inTag = new RegExp(`\\{[{%][^}]*?(?<![\\w.-])${esc}(?![\\w-])`);
  if (isScalar(node) && node.range) {
    const raw = src.text.slice(node.range[0], node.range[1]);
    const m = inTag.exec(raw);
    if (m) return src.atOffset(node.range[0] + m.index + m[0].length - name.length, path, message, hint);
  }
  const m = inTag.exec(source);
  if (!m) return at(src, path, 1, 1, message, hint);
  const before = source.slice(0, m.index + m[0].length - name.length).split("\n");
  return at(src, path, before.length, before[before.length - 1]!.length + 1, message, hint);
}

/** Map a line/col inside a template scalar to the manifest file. */
function at(src: YamlSource, path: KeyPath, tLine: number, tCol: number, message: string, hint?: string): Diagnostic {
  const node = src.nodeAt(path);
  if (!isScalar(node) || !node.range) return src.at(path, message, hint);
  const start = src.locate(path);
  const block = node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED;
  if (block) {
    const firstLine = start.line + 1;
    const line = firstLine + tLine - 1;
    const indent = (src.lines[line - 1] ?? "").match(/^ */)![0].length;
    return src.diagnostic(line, indent + tCol, formatPath(path), message, hint);
  }
  const quoted = node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE;
  if (tLine === 1) return src.diagnostic(start.line, start.col + tCol - 1 + (quoted ? 1 : 0), formatPath(path), message, hint);
  return src.diagnostic(start.line, start.col, formatPath(path), `${message} (line ${tLine} of the template)`, hint);
}
