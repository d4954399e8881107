import { forEachLimit } from "../util/pool.js";
import { type RetryPolicy, withRetry } from "./remote/retry.js";
import { type Remote, RemoteAccessError, RemoteObjectError } from "./remote/types.js";
import { type Cache, parseEntry } from "./store.js";

/** Whether bytes fetched for `key` may be stored and used. The lead plugs the lock's content hash in here. */
export type Validate = (key: string, bytes: Uint8Array) => boolean;

/** Until the lock records content hashes: the bytes are a sound cache entry stored under this key. */
export const soundEntry: Validate = (key, bytes) => parseEntry(Buffer.from(bytes).toString("utf8"), key) !== undefined;

export interface TransferOptions extends RetryPolicy {
  /** Transfers in flight at once (default 16). */
  concurrency?: number;
  validate?: Validate;
  /** Called after each key is done, for progress. */
  onKey?: (done: number, total: number) => void;
}

export interface TransferResult {
  /** Keys asked for, after removing duplicates. */
  keys: number;
  /** Keys moved. */
  transferred: number;
  /** Keys already at the destination. */
  present: number;
  bytes: number;
  seconds: number;
}

export interface PushResult extends TransferResult {
  /** Keys the local cache does not hold, so could not be pushed. */
  missingLocally: string[];
}

/**
 * Upload every key the remote lacks. The remote is listed once, then each missing key is
 * uploaded first-writer-wins (a key another machine stored meanwhile counts as present).
 * Transient failures are retried; one that outlasts its retries, or a refusal, fails the push.
 */
export async function push(cache: Cache, remote: Remote, keys: Iterable<string>, opts: TransferOptions = {}): Promise<PushResult> {
  const started = process.hrtime.bigint();
  const wanted = [...new Set(keys)].sort();
  const there = await withRetry(() => remote.list(), opts);
  const todo = wanted.filter((k) => !there.has(k));
  const result: PushResult = { keys: wanted.length, transferred: 0, present: wanted.length - todo.length, bytes: 0, seconds: 0, missingLocally: [] };
  let failure: unknown;
  let done = result.present;
  await forEachLimit(todo, opts.concurrency ?? 16, async (key) => {
    if (failure) return;
    try {
      const bytes = await cache.readRaw(key);
      if (!bytes) result.missingLocally.push(key);
      else if ((await withRetry(() => remote.putIfAbsent(key, bytes), opts)) === "stored") {
        result.transferred++;
        result.bytes += bytes.byteLength;
      } else result.present++;
    } catch (err) {
      failure ??= err;
    }
    opts.onKey?.(++done, wanted.length);
  });
  if (failure) throw failure;
  result.missingLocally.sort();
  result.seconds = seconds(started);
  return result;
}

/**
 * Download every key the local cache lacks. Each object is validated before it is stored
 * (atomically); a key the remote lacks or holds corrupt is reported by name and fails the pull
 * after every other key has been fetched, so one bad object costs no good ones.
 */
export async function pull(cache: Cache, remote: Remote, keys: Iterable<string>, opts: TransferOptions = {}): Promise<TransferResult> {
  const started = process.hrtime.bigint();
  const validate = opts.validate ?? soundEntry;
  const wanted = [...new Set(keys)].sort();
  cache.snapshot();
  const todo: string[] = [];
  for (const k of wanted) if (!(await cache.get(k, { evict: false }))) todo.push(k);
  const result: TransferResult = { keys: wanted.length, transferred: 0, present: wanted.length - todo.length, bytes: 0, seconds: 0 };
  const problems: RemoteObjectError["problems"] = [];
  let refused: unknown;
  let done = result.present;
  await forEachLimit(todo, opts.concurrency ?? 16, async (key) => {
    if (refused) return;
    try {
      const bytes = await withRetry(() => remote.get(key), opts);
      if (!bytes) problems.push({ key, problem: "missing" });
      else if (!validate(key, bytes)) problems.push({ key, problem: "corrupt" });
      else {
        await cache.putRaw(key, bytes);
        result.transferred++;
        result.bytes += bytes.byteLength;
      }
    } catch (err) {
      if (err instanceof RemoteAccessError) refused ??= err;
      else problems.push({ key, problem: "unavailable", detail: (err as Error).message });
    }
    opts.onKey?.(++done, wanted.length);
  });
  if (refused) throw refused;
  if (problems.length) {
    problems.sort((a, b) => (a.key < b.key ? -1 : 1));
    const shown = problems.slice(0, 10).map((p) => `  ${p.key}: ${p.problem}${p.detail ? ` (${p.detail})` : ""}`);
    throw new RemoteObjectError(
      `${problems.length} of ${todo.length} answers could not be pulled from ${remote.description}:\n${shown.join("\n")}${problems.length > 10 ? `\n  … and ${problems.length - 10} more` : ""}`,
      problems,
      problems.some((p) => p.problem !== "unavailable")
        ? "nothing corrupt was stored locally; whoever built these answers can `synthbuild push` them again"
        : "the remote was unreachable for these; pull again",
    );
  }
  result.seconds = seconds(started);
  return result;
}

export type ReadThrough = { found: true; bytes: number } | { found: false; why: "missing" | "corrupt" | "unavailable" | "refused"; detail?: string };

/**
 * On a local miss: fetch one key from the remote, validate it, store it locally. Never throws
 * for a remote problem (the caller then requests the answer as usual); says why it found nothing.
 * Afterwards `cache.get(key)` returns the entry.
 */
export async function readThrough(cache: Cache, remote: Remote, key: string, opts: { validate?: Validate } & RetryPolicy = {}): Promise<ReadThrough> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await withRetry(() => remote.get(key), { retries: 1, ...opts });
  } catch (err) {
    return { found: false, why: err instanceof RemoteAccessError ? "refused" : "unavailable", detail: (err as Error).message };
  }
  if (!bytes) return { found: false, why: "missing" };
  if (!(opts.validate ?? soundEntry)(key, bytes)) return { found: false, why: "corrupt" };
  await cache.putRaw(key, bytes);
  return { found: true, bytes: bytes.byteLength };
}

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}
