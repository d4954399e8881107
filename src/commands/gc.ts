import { rm, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { readRoots, rootId } from "../cache/roots.js";
import { lockCacheForGc } from "../cache/users.js";
import { UsageError } from "../errors.js";
import { CacheResolver } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import { currentLock } from "../freshness/current.js";
import { attemptsOfLock } from "../lock/attempts.js";
import { locksOfRefs } from "../lock/git.js";
import { type Lock, lockKeys, readLock } from "../lock/lockfile.js";
import { withAttempts } from "../plan/attempts.js";
import { newRun } from "../plan/pipeline.js";
import { type CommonOptions, openProject } from "./context.js";

export interface GcOptions extends CommonOptions {
  dryRun?: boolean;
  /** More locks whose answers must be kept (files), besides the working lock and every branch's and tag's. */
  keep?: string[];
  signal?: AbortSignal;
}

export interface GcResult {
  kept: number;
  removed: number;
  bytes: number;
  dryRun: boolean;
  /** What was kept, and why: the locks and roots whose answers were kept. */
  sources: { working: boolean; refs: number; files: number; otherProjects: number; manifest: number };
}

/**
 * Remove the cache entries nothing needs, and temp files of killed writers. Kept: every answer
 * named by the working lock, by the lock of every git branch and tag (a release must stay
 * rebuildable), by locks named with --keep, by the lock of every other project sharing the
 * cache (their roots), and every answer the manifest itself still reaches (a lock that does not
 * match the manifest, after a merge resolved the wrong way, must not cost the answers the
 * merged manifest needs). Only this project's entries are ever removed. Runs alone: it waits
 * for builds using the cache to finish, and builds wait for it.
 */
export async function gc(opts: GcOptions = {}): Promise<GcResult> {
  const { manifest: m, paths, cache, samples: drawn } = await openProject(opts);
  const release = await lockCacheForGc(paths.cacheDir, (what) => opts.events?.warn?.(what), opts.signal);
  try {
    // Read once the builds gc waited for have ended: the lock they wrote names what they paid for.
    const existing = await readLock(paths.lock);
    const samples = withAttempts(m, drawn, attemptsOfLock(existing?.lock));
    if (existing && existing.lock.header.name !== m.name)
      throw new UsageError(
        `dataset.lock is for '${existing.lock.header.name}', not '${m.name}': gc would remove this manifest's answers`,
        "run `synthbuild build` to write this manifest's lock first",
      );
    const live = new Set<string>();
    const add = (lock: Lock) => {
      for (const k of lockKeys(lock)) live.add(k);
    };
    const sources: GcResult["sources"] = { working: false, refs: 0, files: 0, otherProjects: 0, manifest: 0 };
    if (existing) {
      add(existing.lock);
      sources.working = true;
    }
    const refs = await locksOfRefs(paths.lock);
    for (const { lock } of refs.locks) if (lock.header.name === m.name) add(lock), sources.refs++;
    for (const unreadable of refs.unreadable)
      opts.events?.warn?.(`the lock committed at ${unreadable} cannot be read; answers only it names are not protected`);
    for (const file of opts.keep ?? []) {
      const named = await readLock(resolve(opts.cwd ?? process.cwd(), file));
      if (!named) throw new UsageError(`--keep ${file}: no such lock`);
      add(named.lock);
      sources.files++;
    }
    const self = rootId(m.file);
    for (const [id, root] of await readRoots(paths.cacheDir)) {
      if (id === self) continue;
      for (const k of root.keys) live.add(k);
      sources.otherProjects++;
    }
    // A lock that matches the manifest names everything the manifest reaches; otherwise walk it.
    if (!existing || !currentLock(m, samples, existing.lock, existing.lock.header.offline ?? false).ok) {
      const cached = new CacheResolver(cache, false);
      for (const offline of [false, true]) {
        const reached = new Set<string>();
        const recording = {
          answer: async (key: string) => {
            const a = await cached.answer(key);
            if (a) reached.add(key);
            return a;
          },
        };
        await walk(
          m,
          samples.map((s) => newRun(m, s)),
          { cached: recording, width: 64, providerOverride: offline ? "echo" : undefined },
        );
        for (const k of reached) live.add(k);
        sources.manifest += reached.size;
      }
      if (existing) opts.events?.warn?.("dataset.lock does not match the manifest: every answer the manifest still reaches was kept too");
    }

    const { keys, strays } = await cache.list();
    let removed = 0;
    let bytes = 0;
    const foreign = sources.otherProjects > 0;
    const dead = new Set<string>();
    for (const key of keys) {
      if (live.has(key)) continue;
      const entry = await cache.get(key, { evict: false });
      // Another project's answer (or, in a shared cache, one whose owner is unknown) is theirs to remove.
      if (entry && (entry.project ?? (foreign ? undefined : m.name)) !== m.name) continue;
      bytes += await cache.sizeOf(key);
      dead.add(key);
      removed++;
    }
    if (!opts.dryRun) await cache.remove(dead);
    for (const path of strays) {
      bytes += (await stat(path).catch(() => ({ size: 0 }))).size;
      if (!opts.dryRun) await rm(path, { force: true });
      removed++;
    }
    return { kept: keys.length - (removed - strays.length), removed, bytes, dryRun: opts.dryRun ?? false, sources };
  } finally {
    cache.close();
    await release();
  }
}
