import { TemplateRenderError } from "./engine.js";

/**
 * A value with fields that templates read as `{{ name.field }}`: a row of a rows dimension, or a
 * step's answer parsed against its json_schema. It prints as `text` (an answer's raw JSON, so
 * `{{ q }}` renders, and is keyed, exactly as before answers had fields); Liquid reads fields
 * through `toLiquid()`, which hands it the plain parsed value, so `ownPropertyOnly` still guards
 * every property read (a field named `constructor` is data, never the class).
 */
export class Structured {
  private wrapped?: unknown;

  constructor(
    readonly text: string,
    readonly value: unknown,
    /**
     * Where it came from: run modules get a row as an object, an answer as the text they always
     * got; a field is an object inside either.
     */
    readonly origin: "row" | "answer" | "field",
  ) {}

  toString(): string {
    return this.text;
  }

  /** `| json` of an answer is the JSON of its text, as it was when answers were only text. */
  toJSON(): unknown {
    return this.origin === "answer" ? this.text : this.value;
  }

  toLiquid(): unknown {
    if (this.wrapped === undefined) this.wrapped = wrapInner(this.value);
    return this.wrapped;
  }
}

/**
 * Nested objects print as their JSON, not "[object Object]"; arrays stay arrays, so `for` loops
 * and `size` work on them as on any Liquid list.
 */
function wrapInner(v: unknown): unknown {
  if (Array.isArray(v)) return v.map((x) => (isObject(x) ? new Structured(JSON.stringify(x), x, "field") : wrapInner(x)));
  if (!isObject(v)) return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) {
    // defineProperty: a field named __proto__ must be an own property, not the object's prototype.
    const inner = isObject(x) ? new Structured(JSON.stringify(x), x, "field") : wrapInner(x);
    Object.defineProperty(out, k, { value: inner, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * The typed value at `path` (literal field names and list indexes) inside a structured value, or
 * undefined when `v` is not structured or the path leads nowhere.
 */
export function fieldValue(v: unknown, path: readonly (string | number)[]): unknown {
  if (!(v instanceof Structured) || path.length === 0) return undefined;
  let cur: unknown = v.value;
  for (const seg of path) {
    if (typeof cur !== "object" || cur === null) return undefined;
    if (Array.isArray(cur)) {
      if (typeof seg !== "number") return undefined;
      cur = cur[seg < 0 ? cur.length + seg : seg];
    } else {
      if (!Object.hasOwn(cur, seg)) return undefined;
      cur = (cur as Record<string, unknown>)[String(seg)];
    }
  }
  return cur;
}

/** What a run module is given for a variable: rows as plain objects, answers as their text. */
export function forModule(v: unknown): unknown {
  if (!(v instanceof Structured)) return v;
  return v.origin === "row" ? v.value : v.text;
}

/**
 * Why a render failed because of one sample's data, or undefined when the failure is the
 * template's own. A template that reads a structured value can meet an answer without a field
 * that no schema promised, or a list shorter than the index it reads: that is the sample's
 * problem, and stopping the build for it would cost every other sample.
 */
export function dataRenderProblem(err: unknown, reads: readonly string[], scope: Record<string, unknown>): string | undefined {
  if (!(err instanceof TemplateRenderError)) return undefined;
  if (!reads.some((n) => Object.hasOwn(scope, n) && scope[n] instanceof Structured)) return undefined;
  const cause = (err as { cause?: unknown }).cause;
  const detail = cause instanceof Error ? cause.message.replace(/, line:\d+, col:\d+$/, "") : err.message;
  return `cannot render with its answers' fields: ${detail}`;
}
