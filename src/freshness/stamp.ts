import { createHmac, randomBytes } from "node:crypto";
import { linkSync, readFileSync, renameSync, rmSync, type Stats, statSync, writeFileSync } from "node:fs";
import { readFile, rm } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import type { Cache } from "../cache/store.js";
import { type TargetOutcome, targetOutcome } from "../expand/target.js";
import { countDrops, type DropCount } from "../lock/drops.js";
import type { Lock } from "../lock/lockfile.js";
import { globFiles } from "../manifest/glob-files.js";
import type { Manifest } from "../manifest/types.js";
import { cardTarget } from "../output/card.js";
import { SPLIT_VERSION } from "../output/split.js";
import { RECIPE_VERSIONS } from "../plan/recipe.js";
import type { ProjectPaths } from "../project.js";
import { canonicalJson } from "../util/canonical-json.js";
import { tooRecentToTrust } from "../util/file-times.js";
import { writeFileAtomic } from "../util/fs-atomic.js";
import { createHash64, hash64 } from "../util/hash.js";
import { makeDirsSync } from "../util/make-dirs.js";
import { VERSION } from "../version.js";

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
 * It lives in the cache's state folder (never committed, perhaps shared). It holds hashes, never
 * values, and environment variables (which may be secrets) only as an HMAC under a key kept in
 * ~/.cache/synthbuild (or $SYNTHBUILD_STATE_DIR): on another machine the stamp does not hold.
 */
interface Stamp {
  stamp: 2;
  tool: string;
  offline: boolean;
  /** Absolute path → hash64 of its text (the manifest first). */
  files: Record<string, string>;
  globs: { pattern: string; cwd: string; roots?: readonly string[]; matches: string[] }[];
  env: { names: string[]; hash: string };
  /** hash64 of the lock's text. */
  lock: string;
  /** Output path → its stat: size, mtime, ctime, inode (ctime moves on any write, even one that restores the mtime). */
  outputs: Record<string, FileStat>;
  /** Cache shard folder → its stat: an entry added or removed moves it. */
  shards: Record<string, FileStat>;
  warnings: string[];
  result: NoopSummary;
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

/** What a no-op build reports: the lock's counts. */
export interface NoopSummary {
  samples: number;
  dropped: number;
  drops: DropCount[];
  /** Answers the lock names. */
  cached: number;
  outputs: { path: string; rows: number }[];
  /** With `target:`: rows wanted and kept, candidates used; a target not reached is exit 1 even on a no-op. */
  target?: TargetOutcome;
}

export type StampCheck = { holds: true; result: NoopSummary; warnings: string[] } | { holds: false; why: string };

/** Whether the stamp of the last complete build still holds: if so, the result of a no-op build. */
export async function upToDate(file: string, paths: ProjectPaths, opts: { offline: boolean; env: NodeJS.ProcessEnv }): Promise<StampCheck> {
  let text: string;
  try {
    text = await readFile(stampPath(paths, file), "utf8");
  } catch {
    return { holds: false, why: "no stamp (the last build was not complete, or made none)" };
  }
  try {
    return await check(JSON.parse(text) as Stamp, file, paths, opts);
  } catch {
    // Not the shape this version writes: only a shortcut lost.
    return { holds: false, why: "the stamp is unreadable" };
  }
}

async function check(s: Stamp, file: string, paths: ProjectPaths, opts: { offline: boolean; env: NodeJS.ProcessEnv }): Promise<StampCheck> {
  const no = (why: string): StampCheck => ({ holds: false, why });
  if (s.stamp !== 2 || s.tool !== (await toolId())) return no("written by another version of synthbuild or Node");
  if (s.offline !== opts.offline) return no(`the last build was ${s.offline ? "" : "not "}--offline`);
  if (Object.keys(s.files)[0] !== file) return no("the stamp is for another manifest");
  for (const [path, was] of Object.entries(s.outputs)) {
    if (!sameStat(statOf(path), was)) return no(`${path} changed`);
  }
  for (const [shard, was] of Object.entries(s.shards)) {
    if (!sameStat(statOf(shard), was)) return no(`cache file ${shard} changed`);
  }
  if (s.env.hash !== envHash(s.env.names, opts.env))
    return no(`an environment variable the manifest reads changed, or this is another machine (${s.env.names.join(", ")})`);
  if ((await hashFile(paths.lock)) !== s.lock) return no(`${paths.lock} changed`);
  for (const [path, hash] of Object.entries(s.files)) {
    if (hash64(await readFile(path, "utf8").catch(() => "\0missing")) !== hash) return no(`${path} changed`);
  }
  for (const g of s.globs) {
    const now = await globFiles(g.pattern, g.cwd, g.roots ?? [g.cwd]);
    if (now.outside.length || now.loops.length || canonicalJson(now.files) !== canonicalJson(g.matches)) return no(`the files ${g.pattern} matches changed`);
  }
  return { holds: true, result: s.result, warnings: s.warnings };
}

/** What a complete build leaves for its stamp: the lock it wrote (or confirmed) and its hash. */
export interface StampOptions {
  manifest: Manifest;
  paths: ProjectPaths;
  cache: Cache;
  lock: Lock;
  lockHash: string;
  offline: boolean;
  env: NodeJS.ProcessEnv;
  /** The manifest's own warnings, said again by each no-op the stamp decides. */
  warnings: string[];
}

/**
 * Stamp a complete build. Writes nothing if a fact cannot be trusted to move when its file
 * changes, and says why (build --verbose prints it).
 */
export async function writeStamp(o: StampOptions): Promise<string | undefined> {
  const { manifest: m, paths, cache, lock, lockHash, offline, env, warnings } = o;
  if (m.outputs.some((o) => o.format === "files")) return "a files output (its many files are not stamped)";
  const outputs: Stamp["outputs"] = {};
  for (const o of lock.outputs) {
    const abs = join(m.dir, o.path);
    const st = statOf(abs);
    if (!st || tooRecentToTrust(st.mtimeMs) || tooRecentToTrust(st.ctimeMs)) return `${o.path}'s time is too coarse to trust yet`;
    outputs[abs] = fileStat(st);
  }
  // The dataset card is derived from the lock; deleting or editing it (ours or the user's own) must
  // bring the full check back, which knows whether to write it.
  const card = cardTarget(m);
  if (card) {
    const st = statOf(card.abs);
    if (!st) return `${card.path} is not there`;
    if (tooRecentToTrust(st.mtimeMs) || tooRecentToTrust(st.ctimeMs)) return `${card.path}'s time is too coarse to trust yet`;
    outputs[card.abs] = fileStat(st);
  }
  const keys: string[] = [];
  for (const s of lock.samples) for (const id in s.steps) if (s.steps[id]!.key) keys.push(s.steps[id]!.key!);
  const shards: Stamp["shards"] = {};
  for (const shard of cache.witnesses(keys)) {
    const st = statOf(shard);
    if (!st || tooRecentToTrust(st.mtimeMs) || tooRecentToTrust(st.ctimeMs)) return `cache file ${shard}'s time is too coarse to trust yet`;
    shards[shard] = fileStat(st);
  }
  const names = [...m.inputs.env].sort();
  const hash = envHash(names, env);
  if (hash === undefined) return "no machine key could be kept for the environment's values (set SYNTHBUILD_STATE_DIR to a writable folder)";
  const stamp: Stamp = {
    stamp: 2,
    tool: await toolId(),
    offline,
    files: m.inputs.files,
    globs: m.inputs.globs,
    env: { names, hash },
    lock: lockHash,
    outputs,
    shards,
    warnings,
    result: {
      samples: lock.header.samples,
      dropped: lock.header.dropped,
      drops: countDrops(lock.samples),
      cached: keys.length,
      outputs: lock.outputs.map((o) => ({ path: o.path, rows: o.rows })),
      ...(lock.header.target ? { target: targetOutcome(lock.header) } : {}),
    },
  };
  try {
    await writeFileAtomic(stampPath(paths, m.file), JSON.stringify(stamp), { fsync: false });
  } catch (err) {
    // Only a shortcut: a read-only cache folder checks in full every time.
    return `the cache folder is not writable (${(err as NodeJS.ErrnoException).code ?? "error"})`;
  }
  return undefined;
}

export async function removeStamp(paths: ProjectPaths, file: string): Promise<void> {
  await rm(stampPath(paths, file), { force: true });
}

/**
 * The values of the environment variables the manifest reads, as an HMAC under a key that never
 * leaves this machine: a value may be a secret (a gateway key in `headers`), and the cache folder
 * the stamp lives in may be shared. Undefined when no key can be kept (no writable home).
 */
function envHash(names: string[], env: NodeJS.ProcessEnv): string | undefined {
  if (names.length === 0) return "none";
  const key = machineKey(env);
  return (
    key &&
    createHmac("sha256", key)
      .update(canonicalJson(names.map((n) => [n, env[n] ?? null])))
      .digest("hex")
  );
}

const keys = new Map<string, Buffer | undefined>();
const KEY_BYTES = 32;

/** This machine's key: made once, whole or not at all (a temp file linked into place), 0600. */
function machineKey(env: NodeJS.ProcessEnv): Buffer | undefined {
  const dir = env.SYNTHBUILD_STATE_DIR || join(env.XDG_CACHE_HOME || join(homedir(), ".cache"), "synthbuild");
  if (!keys.has(dir)) keys.set(dir, readOrMakeKey(join(dir, "stamp-key")));
  return keys.get(dir);
}

function readOrMakeKey(path: string): Buffer | undefined {
  const read = () => {
    try {
      const key = readFileSync(path);
      return key.length === KEY_BYTES ? key : undefined;
    } catch {
      return undefined;
    }
  };
  const existing = read();
  if (existing) return existing;
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    makeDirsSync(dirname(path), 0o700);
    writeFileSync(tmp, randomBytes(KEY_BYTES), { mode: 0o600 });
    try {
      linkSync(tmp, path);
    } catch {
      // Another process made it first (then theirs is used), a damaged key is in the way, or the
      // filesystem has no hard links.
      if (!read()) renameSync(tmp, path);
    }
  } catch {
    // Nowhere to keep a key: no stamps on this machine (the full check still decides no-ops).
    return undefined;
  } finally {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // Its folder never existed.
    }
  }
  return read();
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

/**
 * The tool as far as the dataset is concerned: its version and the versions that turn a
 * definition into requests (the recipes' own, which the full check compares), and Node's. The
 * same identity decide() sees, so the stamp can never hold where the full check would not.
 */
function toolId(): Promise<string> {
  // The split version too: a new assignment must reach the full check, which re-emits dist/.
  return Promise.resolve(`${VERSION}:${RECIPE_VERSIONS}:split:${SPLIT_VERSION}:${process.version}`);
}
