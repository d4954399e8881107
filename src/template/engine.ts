import { Liquid, type Template } from "liquidjs";
import { SynthbuildError } from "../errors.js";

/**
 * Templates are Liquid, strict: an undefined variable or filter is an error, never an empty
 * string. The names a template reads are known before any sample is rendered, so a typo is a
 * load-time error with a position rather than a thousand bad requests.
 */
const liquid = new Liquid({
  strictVariables: true,
  strictFilters: true,
  ownPropertyOnly: true,
  cache: false,
  // A prompt must not depend on the machine that renders it: `date` formats in UTC and en-US, not
  // in the local zone and locale. (Also spares the ~10 ms of Intl start-up that locale detection costs.)
  locale: "en-US",
  timezoneOffset: 0,
});

// liquidjs formats %c, %x and %X with toLocale*String() and no locale, i.e. the machine's: they
// are spelt out as en-US patterns before the built-in filter sees them.
const EN_US: Record<string, string> = { c: "%-m/%-d/%Y, %-I:%M:%S %p", x: "%-m/%-d/%Y", X: "%-I:%M:%S %p" };
type DateFilter = (this: unknown, value: unknown, ...args: unknown[]) => unknown;
const builtinDate = liquid.filters.date as DateFilter;
liquid.registerFilter("date", function (this: unknown, value: unknown, format?: unknown, ...rest: unknown[]) {
  const fixed = typeof format === "string" ? format.replace(/%%|%[-_0^#:]*\d*([cxX])/g, (m, code?: string) => (code ? EN_US[code]! : m)) : format;
  return builtinDate.call(this, value, fixed, ...rest);
});

/**
 * Bump when the same template and values may render to different text (a filter fixed, an engine
 * upgrade that changes output): every recipe and output definition carries it, so a no-op check
 * after an upgrade re-renders instead of trusting the lock. Keys then change only where the text
 * really did.
 *
 * 1: strict Liquid; `date` in UTC and en-US.
 */
export const RENDER_VERSION = 1;

export interface CompiledTemplate {
  readonly source: string;
  readonly parsed: Template[];
  /** Top-level variable names the template reads, in order of first use. */
  readonly reads: string[];
  /** Where it was written (`dataset.yaml:9:16 steps[0].generate.prompt`), for render errors. */
  readonly where?: string;
  /**
   * Most templates are text with plain `{{ name }}` holes. Those are rendered by concatenation:
   * the same output as Liquid (values are strings and numbers, printed as is), at a fraction of
   * the cost, which matters at a million samples. Alternating text and names; text first.
   */
  readonly plain?: string[];
}

/**
 * A template that compiled but cannot render (a filter given the wrong arguments, a property of a
 * value that has none). The same for every sample, so it is the manifest's error, not a sample's.
 */
export class TemplateRenderError extends SynthbuildError {
  readonly exitCode = 2;
}

/** Tags that read other files: a template is self-contained, so its hash covers everything it renders. */
const FILE_TAGS = /\{%-?\s*(include|render|layout)\b/;

export class TemplateSyntaxError extends Error {
  constructor(
    message: string,
    /** 1-based line and column within the template text. */
    readonly line: number,
    readonly col: number,
  ) {
    super(message);
  }
}

export function compileTemplate(source: string, where?: string): CompiledTemplate {
  const fileTag = FILE_TAGS.exec(source);
  if (fileTag) {
    const before = source.slice(0, fileTag.index).split("\n");
    throw new TemplateSyntaxError(
      `the {% ${fileTag[1]} %} tag is not available: templates cannot read other files`,
      before.length,
      before[before.length - 1]!.length + 1,
    );
  }
  let parsed: Template[];
  try {
    parsed = liquid.parse(source);
  } catch (err) {
    const e = err as Error & { token?: { getPosition?: () => [number, number] } };
    const [line, col] = e.token?.getPosition?.() ?? [1, 1];
    throw new TemplateSyntaxError(e.message.replace(/, line:\d+, col:\d+$/, ""), line, col);
  }
  const reads = liquid.globalVariablesSync(parsed);
  return { source, parsed, reads, where, plain: plainParts(source) };
}

const HOLE = /\{\{\s*([A-Za-z_][\w-]*)\s*\}\}/g;

function plainParts(source: string): string[] | undefined {
  const parts: string[] = [];
  let last = 0;
  for (const m of source.matchAll(HOLE)) {
    parts.push(source.slice(last, m.index), m[1]!);
    last = m.index + m[0].length;
  }
  parts.push(source.slice(last));
  // Anything Liquid-like left in the text (tags, filters, whitespace control) needs Liquid.
  for (let i = 0; i < parts.length; i += 2) if (/\{\{|\{%|\}\}|%\}/.test(parts[i]!)) return undefined;
  return parts;
}

/**
 * Every variable path a template reads from its scope (`{{ seed.question }}` → ["seed",
 * "question"]; a segment that is itself a variable, as in `seed[col]`, is a nested list).
 * Loop variables and assigned names are left out: they are the template's own.
 */
export function readPaths(t: CompiledTemplate): (string | number | unknown[])[][] {
  return liquid.globalVariableSegmentsSync(t.parsed) as (string | number | unknown[])[][];
}

/** Render with `scope`; `extra` (the step's nonce) is looked up first, without copying the scope. */
export function renderTemplate(t: CompiledTemplate, scope: Record<string, unknown>, extra?: Record<string, unknown>): string {
  if (t.plain) {
    const p = t.plain;
    let out = p[0]!;
    for (let i = 1; i < p.length; i += 2) {
      const name = p[i]!;
      // Own properties only, as Liquid reads them (ownPropertyOnly): `constructor` or `toString` is
      // never a variable, even if a template that names one gets this far.
      const v = extra && Object.hasOwn(extra, name) ? extra[name] : Object.hasOwn(scope, name) ? scope[name] : undefined;
      if (v === undefined || v === null) return renderWithLiquid(t, extra ? { ...scope, ...extra } : scope);
      out += String(v) + p[i + 1]!;
    }
    return out;
  }
  return renderWithLiquid(t, extra ? { ...scope, ...extra } : scope);
}

function renderWithLiquid(t: CompiledTemplate, scope: Record<string, unknown>): string {
  try {
    return liquid.renderSync(t.parsed, scope) as string;
  } catch (err) {
    const e = err as Error;
    const error = new TemplateRenderError(
      `${t.where ?? "template"}: cannot render: ${e.message.replace(/, line:\d+, col:\d+$/, "")}`,
      "check the filter's arguments (e.g. append: 'text') and that every property read exists",
    );
    (error as { cause?: unknown }).cause = e;
    throw error;
  }
}
