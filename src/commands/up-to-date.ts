import { statSync, type Stats } from "node:fs";
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
  /** Run modules' import URLs: they must still load, as the full check would import them. */
  modules: string[];
  env: { names: string[]; hash: string };
  /** hash64 of the lock's text. */
  lock: string;
  /** Output path → its stat: size, mtime, ctime, inode (ctime moves on any write, even one that restores the mtime). */
  outputs: Record<string, FileStat>;
  /** Cache shard folder → its stat: an entry added or removed moves it. */
  shards: Record<string, FileStat>;
  warnings: string[];
  result: BuildResult;
}

type FileStat = [size: number, mtimeMs: number, ctimeMs: number, ino: number];

function fileStat(st: Stats): FileStat {
  return [st.size, st.mtimeMs, st.ctimeMs, st.ino];
}

/** Synchronous: hundreds of stats one after another cost a thread-pool round trip each otherwise. */
function statOf(path: string): Stats | undefined {
  return statSync(path, { throwIfNoEntry: false });
}

function sameStat(st: Stats | undefined, was: FileStat): boolean {
  return st !== undefined && canonicalJson(fileStat(st)) === canonicalJson(was);
}

export function stampPath(paths: ProjectPaths, manifestFile: string): string {
  return join(paths.cacheDir, "state", "stamps", `${hash64(manifestFile)}.json`);
}

export type StampCheck = { holds: true; result: BuildResult; warnings: string[] } | { holds: false; why: string };

/** Whether the stamp of the last complete build still holds: if so, the result of a no-op build. */
export async function upToDate(file: string, paths: ProjectPaths, opts: { offline: boolean; env: NodeJS.ProcessEnv }): Promise<StampCheck> {
  const no = (why: string): StampCheck => ({ holds: false, why });
  let s: Stamp;
  try {
    s = JSON.parse(await readFile(stampPath(paths, file), "utf8")) as Stamp;
  } catch (err) {
    return no((err as NodeJS.ErrnoException).code === "ENOENT" ? "no stamp (the last build was not complete, or made none)" : "the stamp is unreadable");
  }
  if (s.stamp !== 1 || s.tool !== (await toolId())) return no("written by another version of synthbuild or Node");
  if (s.offline !== opts.offline) return no(`the last build was ${s.offline ? "" : "not "}--offline`);
  if (Object.keys(s.files)[0] !== file) return no("the stamp is for another manifest");
  for (const [path, was] of Object.entries(s.outputs)) {
    if (!sameStat(statOf(path), was)) return no(`${path} changed`);
  }
  for (const [shard, was] of Object.entries(s.shards)) {
    if (!sameStat(statOf(shard), was)) return no(`cache folder ${shard} changed`);
  }
  if (s.env.hash !== envHash(s.env.names, opts.env)) return no(`an environment variable the manifest reads changed (${s.env.names.join(", ")})`);
  if ((await hashFile(paths.lock)) !== s.lock) return no(`${paths.lock} changed`);
  for (const [path, hash] of Object.entries(s.files)) {
    if (hash64(await readFile(path, "utf8").catch(() => "\0missing")) !== hash) return no(`${path} changed`);
  }
  for (const g of s.globs) {
    if (canonicalJson(await globFiles(g.pattern, g.cwd)) !== canonicalJson(g.matches)) return no(`the files ${g.pattern} matches changed`);
  }
  for (const url of s.modules) {
    // A module whose own text is unchanged may still fail to load (an import gone): then the full
    // path must run, to report it where the manifest names the module.
    const mod = (await import(url).catch(() => undefined)) as { default?: unknown } | undefined;
    if (typeof mod?.default !== "function") return no(`${fileURLToPath(url)} no longer loads`);
  }
  return { holds: true, result: s.result, warnings: s.warnings };
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
    const st = statOf(abs);
    if (!st || ambiguous(st.mtimeMs) || ambiguous(st.ctimeMs)) return;
    outputs[abs] = fileStat(st);
  }
  const keys: string[] = [];
  for (const s of lock.samples) for (const id in s.steps) if (s.steps[id]!.key) keys.push(s.steps[id]!.key!);
  const shards: Stamp["shards"] = {};
  for (const shard of cache.shardFolders(keys)) {
    const st = statOf(shard);
    if (!st || ambiguous(st.mtimeMs) || ambiguous(st.ctimeMs)) return;
    shards[shard] = fileStat(st);
  }
  const names = [...m.inputs.env].sort();
  const stamp: Stamp = {
    stamp: 1,
    tool: await toolId(),
    offline,
    files: m.inputs.files,
    globs: m.inputs.globs,
    modules: m.inputs.modules,
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
    (st) => `${VERSION}:${st.size}:${st.mtimeMs}:${process.version}`,
    () => `${VERSION}:${process.version}`,
  );
  return tool;
}
