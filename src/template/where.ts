import { compileExpression } from "filtrex";
import { Structured } from "./structured.js";

/**
 * `filter: { where: "judge.score >= 4 and len(story) > 200" }`: a condition on a sample's
 * variables in filtrex's expression language (spreadsheet-like, no loops, no access to
 * JavaScript objects; https://github.com/cshaa/filtrex), never `eval`.
 *
 * A name is a dimension or a step read before the filter. `name.field.sub` reads a field of that
 * value parsed as JSON (a json_schema step's answer, or one extracted by a map step), so an
 * LLM judge's verdict is a number to compare, not text.
 */
export interface Where {
  readonly source: string;
  /** The root names the expression reads (`judge` for `judge.score`), for the manifest's check. */
  readonly names: readonly string[];
  /** Every name read, split at its dots (`judge.score` is ["judge", "score"]): a rows dimension's columns are checked against them. */
  readonly reads: readonly (readonly string[])[];
  /** undefined to keep the sample, or why it is dropped. */
  test(scope: Readonly<Record<string, unknown>>): string | undefined;
}

export class WhereSyntaxError extends Error {}

const FUNCTIONS = {
  /** Characters of a text, items of a list, keys of an object. */
  len: (v: unknown) => (typeof v === "string" || Array.isArray(v) ? v.length : v && typeof v === "object" ? Object.keys(v).length : 0),
  lower: (v: unknown) => String(v ?? "").toLowerCase(),
  upper: (v: unknown) => String(v ?? "").toUpperCase(),
  words: (v: unknown) =>
    String(v ?? "")
      .split(/\s+/)
      .filter(Boolean).length,
  contains: (v: unknown, part: unknown) => String(v ?? "").includes(String(part ?? "")),
  startswith: (v: unknown, part: unknown) => String(v ?? "").startsWith(String(part ?? "")),
  endswith: (v: unknown, part: unknown) => String(v ?? "").endsWith(String(part ?? "")),
};
const BUILTIN_FUNCTIONS = ["abs", "ceil", "floor", "log", "log2", "log10", "max", "min", "round", "sqrt", "exists", "empty"];
export const WHERE_FUNCTIONS: readonly string[] = [...BUILTIN_FUNCTIONS, ...Object.keys(FUNCTIONS)].sort();

const CONSTANTS = ["true", "false", "null"];

/**
 * Dimension values and CSV columns are text: `n > 1` and `n == 1` compare a text that is a number
 * as that number (filtrex alone would refuse `"1" > 1` and find `"1" == 1` false). A value that is
 * missing where a number is needed is said by name, from the lookups the sample made.
 */
const NUMERIC = /^\s*-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$/;
const asNumber = (v: unknown): unknown => (typeof v === "string" && NUMERIC.test(v) ? Number(v) : v);
function num(v: unknown): number {
  const n = asNumber(v);
  if (typeof n === "number") return n;
  throw new TypeError(v === undefined || v === null ? "a value is missing where a number is needed" : `${JSON.stringify(v)} is not a number`);
}
const same = (a: unknown, b: unknown) => a === b || ((typeof a === "number") !== (typeof b === "number") && asNumber(a) === asNumber(b));
const OPERATORS = {
  "==": (a: unknown, b: unknown) => same(a, b),
  "!=": (a: unknown, b: unknown) => !same(a, b),
  "<": (a: unknown, b: unknown) => num(a) < num(b),
  "<=": (a: unknown, b: unknown) => num(a) <= num(b),
  ">": (a: unknown, b: unknown) => num(a) > num(b),
  ">=": (a: unknown, b: unknown) => num(a) >= num(b),
};

export function compileWhere(source: string): Where {
  const { names, functions } = symbols(source);
  for (const f of functions)
    if (!WHERE_FUNCTIONS.includes(f)) throw new WhereSyntaxError(`unknown function ${f}(); the functions are ${WHERE_FUNCTIONS.join(", ")}`);
  let fn: (data: unknown) => unknown;
  try {
    fn = compileExpression(source, {
      extraFunctions: FUNCTIONS,
      customProp: lookup,
      operators: OPERATORS,
      constants: { true: true, false: false, null: null },
    });
  } catch (err) {
    throw new WhereSyntaxError(parseError((err as Error).message));
  }
  const roots = [...new Set(names.map((n) => n.split(".")[0]!))].sort();
  return {
    source,
    names: roots,
    reads: names.map((n) => n.split(".")),
    test(scope) {
      const parsed = new Map<string, unknown>();
      const missing: string[] = [];
      const result = fn({ scope, parsed, missing });
      // A missing field is undefined (so exists() and empty() can test it); what failed on one is said by name.
      if (result instanceof Error) return `where ${source}: ${missing.length ? `${missing[0]} is missing` : result.message.split("\n")[0]}`;
      if (result === true || (result !== false && result !== 0 && result !== "" && result != null)) return undefined;
      return `where ${source} is false (${names.map((n) => `${n} = ${show(resolve(n, scope, parsed))}`).join(", ")})`;
    },
  };
}

interface Data {
  scope: Readonly<Record<string, unknown>>;
  parsed: Map<string, unknown>;
  missing: string[];
}

function lookup(name: string, _get: unknown, data: Data): unknown {
  const v = resolve(name, data.scope, data.parsed);
  if (v === undefined) data.missing.push(name);
  return v;
}

/** `a.b.c`: the value of `a`, then own fields only (never a prototype's: `a.constructor` is missing). */
function resolve(name: string, scope: Readonly<Record<string, unknown>>, parsed: Map<string, unknown>): unknown {
  const [root, ...path] = name.split(".");
  if (!Object.hasOwn(scope, root!)) return undefined;
  let v = scope[root!];
  // A row or a structured answer: its text alone, its parsed value for a path.
  if (v instanceof Structured) return path.length === 0 ? v.text : walkPath(v.value, path);
  if (path.length === 0) return v;
  if (typeof v === "string") {
    if (!parsed.has(root!)) parsed.set(root!, parseJson(v));
    v = parsed.get(root!);
  }
  return walkPath(v, path);
}

function walkPath(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const key of path) {
    if (v === null || typeof v !== "object" || !Object.hasOwn(v, key)) return undefined;
    v = (v as Record<string, unknown>)[key];
  }
  return v;
}

/** Jison's four-line message as one line: where it stopped and what it got. */
function parseError(message: string): string {
  const [, , caret, expecting] = message.split("\n");
  const at = caret?.indexOf("^") ?? -1;
  const got = /got '([^']+)'/.exec(expecting ?? "")?.[1];
  if (at < 0 || !got) return message.split("\n")[0]!;
  return `cannot parse at character ${at + 1}: unexpected ${got === "EndOfExpression" ? "end of the expression" : got.toLowerCase()}`;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function show(v: unknown): string {
  const s = v === undefined ? "missing" : typeof v === "string" ? JSON.stringify(v) : (JSON.stringify(v) ?? String(v));
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * The names and functions an expression uses, by filtrex's own lexical rules (generateParser.mjs,
 * first matching rule wins), so that the manifest can check them before any request: a name read
 * only in a branch not taken would otherwise surface on the first sample that takes it.
 */
function symbols(source: string): { names: string[]; functions: string[] } {
  const RULES: [RegExp, string][] = [
    [/^(?:==|!=|~=|>=|<=|[*/\-+^(),<>%?:])/, "op"],
    [/^not\s+in[^\w]/, "kw"],
    [/^(?:and|or|not|in|of|if|then|else|mod)[^\w]/, "kw"],
    [/^\s+/, "space"],
    [/^[0-9]+(?:\.[0-9]+)?(?![0-9.])/, "number"],
    [/^[a-zA-Z$_][.a-zA-Z0-9$_]*/, "symbol"],
    [/^'(?:\\'|\\\\|[^'\\])*'/, "quoted"],
    [/^"(?:\\"|\\\\|[^"\\])*"/, "string"],
  ];
  const tokens: { kind: string; text: string }[] = [];
  let rest = source;
  while (rest.length) {
    const rule = RULES.find(([re]) => re.test(rest));
    if (!rule) throw new WhereSyntaxError(`unexpected ${JSON.stringify(rest[0])} at character ${source.length - rest.length + 1}`);
    let text = rule[0].exec(rest)![0];
    // The keyword rules consume the character after the word; give it back.
    if (rule[1] === "kw") text = text.slice(0, -1);
    rest = rest.slice(text.length);
    if (rule[1] === "space") continue;
    tokens.push({ kind: rule[1], text: rule[1] === "kw" ? text.replace(/\s+/g, " ") : text });
  }
  const names: string[] = [];
  const functions: string[] = [];
  tokens.forEach((t, i) => {
    if (t.text === "~=" && tokens[i + 1]?.kind === "string") {
      const literal = tokens[i + 1]!.text;
      try {
        new RegExp(JSON.parse(literal) as string);
      } catch (err) {
        if (err instanceof SyntaxError && !/JSON/.test(err.message))
          throw new WhereSyntaxError(`${literal} is not a regular expression: ${err.message.replace(/^Invalid regular expression: /, "")}`);
      }
    }
    // 'my-judge.score': a name with characters a bare name cannot have (a step id with -, a keyword).
    if (t.kind === "quoted") {
      names.push(t.text.slice(1, -1).replace(/\\(.)/g, "$1"));
      return;
    }
    if (t.text === "of") throw new WhereSyntaxError("`x of y` is not supported; read a field as y.x");
    if (t.text === "?" || t.text === ":" || t.text === "%")
      throw new WhereSyntaxError(`'${t.text}' is filtrex's old syntax; use if ... then ... else, and mod`);
    if (t.kind !== "symbol") return;
    if (tokens[i + 1]?.text === "(") functions.push(t.text);
    else if (!CONSTANTS.includes(t.text)) names.push(t.text);
  });
  return { names: [...new Set(names)], functions: [...new Set(functions)] };
}
