import { readFile, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Cache } from "../cache/store.js";
import type { Lock } from "../lock/lockfile.js";
import { globFiles } from "../manifest/resolve-dimensions.js";
import type { Manifest } from "../manifest/types.js";
import type { ProjectPaths } from "../project.js";
import { canonicalJson } from "../util/canonical-json.js";
import { writeFileAtomic } from "../util/fs-atomic.js";
import { createHash64, hash128, hash64 } from "../util/hash.js";
import { VERSION } from "../version.js";
import type { BuildResult } from "./build.js";

/**
 * make's "up to date" without reading the makefile: a stamp, written by a build that finished
 * complete, of every fact its dataset was a function of. The next build compares the facts (file
 * hashes, glob matches, environment, the lock's hash, outputs' and cache folders' sizes and
 * times) and, if none moved, is done without parsing the manifest, expanding a sample or
 * reading the lock's samples: a no-op of 100,000 samples in the time it takes to hash the lock.
 *
 * The stamp is only a shortcut to the answer the full no-op check would give; anything it cannot
 * vouch for (a `files` output, a time too coarse to trust) means no stamp, and a build that is
 * not a no-op removes it before doing anything.
 *
 * It lives in the cache's state folder (local, never committed). It holds hashes, never values:
 * an environment variable may be a secret.
 */
interface Stamp {
  stamp: 1;
  tool: string;
  offline: boolean;
  /** Absolute path → hash64 of its text (the manifest first). */
  files: Record<string, string>;
  globs: { pattern: string; cwd: string; matches: string[] }[];
  env: { names: string[]; hash: string };
  /** hash64 of the lock's text. */
  lock: string;
  /** Output path → [size, mtime ms]. */
  outputs: Record<string, [number, number]>;
  /** Cache shard folder → mtime ms: an entry added or removed moves it. */
  shards: Record<string, number>;
  warnings: string[];
  result: BuildResult;
}

export function stampPath(paths: ProjectPaths, manifestFile: string): string {
  return join(paths.cacheDir, "state", "stamps", `${hash64(manifestFile)}.json`);
}

/** The result of a no-op build if the stamp still holds, else undefined. */
export async function upToDate(file: string, paths: ProjectPaths, opts: { offline: boolean; env: NodeJS.ProcessEnv }): Promise<{ result: BuildResult; warnings: string[] } | undefined> {
  let s: Stamp;
  try {
    s = JSON.parse(await readFile(stampPath(paths, file), "utf8")) as Stamp;
  } catch {
    return undefined;
  }
  if (s.stamp !== 1 || s.tool !== (await toolId()) || s.offline !== opts.offline) return undefined;
  if (Object.keys(s.files)[0] !== file) return undefined;
  for (const [path, [size, mtime]] of Object.entries(s.outputs)) {
    const st = await stat(path).catch(() => undefined);
    if (!st || st.size !== size || st.mtimeMs !== mtime) return undefined;
  }
  for (const [shard, mtime] of Object.entries(s.shards)) {
    if ((await stat(shard).catch(() => undefined))?.mtimeMs !== mtime) return undefined;
  }
  if (s.env.hash !== envHash(s.env.names, opts.env)) return undefined;
  if ((await hashFile(paths.lock)) !== s.lock) return undefined;
  for (const [path, hash] of Object.entries(s.files)) {
    if (hash64(await readFile(path, "utf8").catch(() => "\0missing")) !== hash) return undefined;
  }
  for (const g of s.globs) {
    if (canonicalJson(await globFiles(g.pattern, g.cwd)) !== canonicalJson(g.matches)) return undefined;
  }
  return { result: s.result, warnings: s.warnings };
}

/**
 * Stamp a complete build: `lock` is what was written (or confirmed), `keys` every cache key it
 * names. Writes nothing if a fact cannot be trusted to move when its file changes.
 */
export async function writeStamp(m: Manifest, paths: ProjectPaths, cache: Cache, lock: Lock, lockHash: string, offline: boolean, env: NodeJS.ProcessEnv, warnings: string[]): Promise<void> {
  if (m.outputs.some((o) => o.format === "files")) return;
  const outputs: Stamp["outputs"] = {};
  for (const o of lock.outputs) {
    const abs = join(m.dir, o.path);
    const st = await stat(abs).catch(() => undefined);
    if (!st || ambiguous(st.mtimeMs)) return;
    outputs[abs] = [st.size, st.mtimeMs];
  }
  const keys: string[] = [];
  for (const s of lock.samples) for (const id in s.steps) if (s.steps[id]!.key) keys.push(s.steps[id]!.key!);
  const shards: Stamp["shards"] = {};
  for (const [shard, mtime] of cache.shardTimes(keys)) {
    if (mtime === undefined || ambiguous(mtime)) return;
    shards[shard] = mtime;
  }
  const names = [...m.inputs.env].sort();
  const stamp: Stamp = {
    stamp: 1,
    tool: await toolId(),
    offline,
    files: m.inputs.files,
    globs: m.inputs.globs,
    env: { names, hash: envHash(names, env) },
    lock: lockHash,
    outputs,
    shards,
    warnings,
    result: {
      samples: lock.header.samples,
      requests: 0,
      cached: keys.length,
      failed: 0,
      dropped: lock.header.dropped,
      pending: 0,
      heldBack: 0,
      outputs: lock.outputs.map((o) => ({ path: o.path, rows: o.rows })),
      failures: [],
      costUsd: 0,
      budgetReached: false,
    },
  };
  try {
    await writeFileAtomic(stampPath(paths, m.file), JSON.stringify(stamp), { fsync: false });
  } catch {
    // Only a shortcut: a read-only cache folder checks in full every time.
  }
}

export async function removeStamp(paths: ProjectPaths, file: string): Promise<void> {
  await rm(stampPath(paths, file), { force: true });
}

/**
 * On a filesystem that keeps whole seconds, a change within the same second as the stamp would
 * not move the time: such a time is trusted only once it is older than that.
 */
function ambiguous(mtimeMs: number): boolean {
  return mtimeMs % 1000 === 0 && Date.now() - mtimeMs < 2000;
}

function envHash(names: string[], env: NodeJS.ProcessEnv): string {
  return hash128(canonicalJson(names.map((n) => [n, env[n] ?? null])));
}

async function hashFile(path: string): Promise<string | undefined> {
  try {
    const h = createHash64();
    h.update(await readFile(path));
    return h.digest();
  } catch {
    return undefined;
  }
}

let tool: Promise<string> | undefined;
/** This version of synthbuild, down to the file it runs from (a rebuilt tool must not trust old stamps). */
function toolId(): Promise<string> {
  tool ??= stat(fileURLToPath(import.meta.url)).then(
    (st) => `${VERSION}:${st.size}:${st.mtimeMs}`,
    () => VERSION,
  );
  return tool;
}
