import { Liquid, type Template } from "liquidjs";

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
});

export interface CompiledTemplate {
  readonly source: string;
  readonly parsed: Template[];
  /** Top-level variable names the template reads, in order of first use. */
  readonly reads: string[];
}

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

export function compileTemplate(source: string): CompiledTemplate {
  let parsed: Template[];
  try {
    parsed = liquid.parse(source);
  } catch (err) {
    const e = err as Error & { token?: { getPosition?: () => [number, number] } };
    const [line, col] = e.token?.getPosition?.() ?? [1, 1];
    throw new TemplateSyntaxError(e.message.replace(/, line:\d+, col:\d+$/, ""), line, col);
  }
  const reads = liquid.globalVariablesSync(parsed);
  return { source, parsed, reads };
}

export function renderTemplate(t: CompiledTemplate, scope: Record<string, unknown>): string {
  return liquid.renderSync(t.parsed, scope) as string;
}
