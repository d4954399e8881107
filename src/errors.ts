/**
 * User errors are typed and carry what a person needs to fix them; the CLI prints them without a
 * stack. Anything that is not a SynthbuildError is a bug and keeps its stack.
 */
export abstract class SynthbuildError extends Error {
  abstract readonly exitCode: number;
  readonly hint?: string;

  constructor(message: string, hint?: string) {
    super(message);
    this.name = new.target.name;
    this.hint = hint;
  }
}

/** Where in a manifest (or a file it reads) something is wrong. */
export interface Diagnostic {
  file: string;
  line: number;
  col: number;
  /** Key path in the manifest, e.g. `steps[1].generate.prompt`. */
  path: string;
  message: string;
  hint?: string;
  /** A few source lines with a caret under the column. */
  frame?: string;
}

export function formatDiagnostic(d: Diagnostic): string {
  const where = `${d.file}:${d.line}:${d.col}`;
  const head = d.path ? `${where} ${d.path}: ${d.message}` : `${where} ${d.message}`;
  const parts = [head];
  if (d.frame) parts.push(d.frame);
  if (d.hint) parts.push(`  hint: ${d.hint}`);
  return parts.join("\n");
}

/** The YAML itself does not parse. */
export class ManifestSyntaxError extends SynthbuildError {
  readonly exitCode = 2;
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n\n"));
  }
}

/** The YAML parses but does not describe a valid dataset. */
export class ManifestError extends SynthbuildError {
  readonly exitCode = 2;
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join("\n\n"));
  }
}

/** Bad command-line usage or an impossible request (unknown sample id, missing API key, ...). */
export class UsageError extends SynthbuildError {
  readonly exitCode = 2;
}

/** `--frozen` could not produce the dataset from the lock and cache alone. */
export class FrozenError extends SynthbuildError {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly missing: string[],
    hint?: string,
  ) {
    super(message, hint);
  }
}

/** `verify` found dist/ or the cache disagreeing with dataset.lock. */
export class VerifyError extends SynthbuildError {
  readonly exitCode = 1;
  constructor(readonly problems: string[]) {
    super(`verify found ${problems.length} problem${problems.length === 1 ? "" : "s"}:\n` + problems.map((p) => `  - ${p}`).join("\n"));
  }
}

/**
 * An answer that concerns the whole endpoint (a rejected key, a forbidden project, an unknown
 * model or URL, a json_schema the endpoint refuses, an endpoint that cannot be reached) stopped
 * the build: every other request would have failed the same way. Exit 1, as for any build that
 * did not produce its dataset (DESIGN: a stopped build leaves dist/ and the lock as they were);
 * not 2, which promises that nothing was done, while answers received before it are cached.
 */
export class EndpointError extends SynthbuildError {
  readonly exitCode = 1;
  constructor(
    message: string,
    hint: string,
    /** What went wrong: auth, forbidden, model, path, schema, quota, unreachable, no-answer. */
    readonly kind: string,
    readonly endpoint: string,
    readonly model: string,
    readonly step: string,
  ) {
    super(message, hint);
  }
}

/** The build was interrupted (Ctrl-C); finished results are kept. */
export class InterruptedError extends SynthbuildError {
  readonly exitCode = 130;
}
