import { SynthbuildError } from "../../errors.js";

/**
 * Where cached answers are shared beyond one disk: a folder (a shared drive) or an S3-compatible
 * bucket. A remote stores opaque bytes under cache keys; what the bytes mean, and whether they
 * are sound, is the caller's business (see sync.ts).
 */
export interface Remote {
  /** Safe to print: a URL without credentials, e.g. `s3://bucket/prefix` or `/mnt/team/cache`. */
  readonly description: string;
  /** The bytes stored under `key`, or undefined if there are none. */
  get(key: string): Promise<Uint8Array | undefined>;
  /** First writer wins: stores the bytes only if nothing is stored under `key` yet, atomically. */
  putIfAbsent(key: string, bytes: Uint8Array): Promise<"stored" | "exists">;
  has(key: string): Promise<boolean>;
  /** Every key stored. */
  list(): Promise<Set<string>>;
}

/** Settings of a remote, as the manifest's `cache:` (or `--remote`) gives them. */
export interface RemoteSettings {
  /** `s3://bucket/prefix`, `file:///path`, or a folder path (absolute, or relative to `baseDir`). */
  readonly url: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly pathStyle?: boolean;
}

/** The remote refused us: wrong or missing credentials, no permission, no such bucket or folder. */
export class RemoteAccessError extends SynthbuildError {
  readonly exitCode = 2;
  readonly retryable = false;
}

/**
 * The remote could not be reached or answered with a transient failure (connection refused,
 * timeout, 5xx, throttling). Worth retrying; after retries, not a reason to fail a build.
 */
export class RemoteUnavailableError extends SynthbuildError {
  readonly exitCode = 1;
  readonly retryable = true;
}

/** Objects the remote lacks or holds corrupt: named by key, never skipped in silence. */
export class RemoteObjectError extends SynthbuildError {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly problems: { key: string; problem: "missing" | "corrupt" | "unavailable"; detail?: string }[],
    hint?: string,
  ) {
    super(message, hint);
  }
}

/** The shard layout of the local cache, so that a shared folder is simply another cache folder. */
export function objectPath(key: string): string {
  return `objects/${key.slice(0, 2)}/${key}.json`;
}

/** Cache keys are hex hashes; anything else in a listing is not ours (temp files, strays). */
export const KEY_FILE = /^([0-9a-z]{2})([0-9a-z_-]*)\.json$/;
