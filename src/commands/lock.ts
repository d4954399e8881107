import { useCache } from "../cache/users.js";
import { CacheResolver } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import { readLock, serializeLock } from "../lock/lockfile.js";
import { emit } from "../output/emit.js";
import { assembleLock } from "../output/lock-entries.js";
import { withAttempts } from "../plan/attempts.js";
import { newRun, type Resolver } from "../plan/pipeline.js";
import { acquireBuildLock } from "../project.js";
import { writeFileAtomic } from "../util/fs-atomic.js";
import { hash64 } from "../util/hash.js";
import { recordedAttempts } from "./attempts.js";
import { type CommonOptions, openProject } from "./context.js";
import { projectRemote } from "./remote.js";
import { BuildRemote } from "./remote-build.js";

export interface LockOptions extends CommonOptions {
  offline?: boolean;
}

export interface LockResult {
  samples: number;
  /** Samples the cache (and the remote, if any) has every answer for. */
  complete: number;
  /** Samples with an answer missing: pending in the lock; `synthbuild build` requests them. */
  missing: { sample: string; step: string }[];
  /** False when the lock on disk was already exactly this. */
  written: boolean;
}

/**
 * Write dataset.lock anew from the manifest and the cache, with no request: what a merge of two
 * branches that both rebuilt needs (their locks conflict in git; their answers are all in the
 * cache, or the remote's). Samples whose answers are missing are recorded as not built yet, and
 * named. dist/ is not touched: the next `synthbuild build` writes it from the cache.
 */
export async function lock(opts: LockOptions = {}): Promise<LockResult> {
  const { manifest: m, paths, cache, samples } = await openProject(opts);
  const release = await acquireBuildLock(
    paths.buildLock,
    (pid) => opts.events?.warn?.(`waiting for a build of this manifest (pid ${pid}) to finish`),
    opts.signal,
  );
  // Answers fetched from the remote are stored: gc must wait, as it does for a build.
  let unuse: () => Promise<void> = async () => {};
  try {
    unuse = await useCache(paths.cacheDir, (what) => opts.events?.warn?.(what), opts.signal);
    const existing = await readLock(paths.lock).catch(() => undefined);
    const offline = opts.offline ?? existing?.lock.header.offline ?? false;
    // Rerolls survive the rewrite: from the lock, or from what a conflicted lock's lines and both
    // sides of an unresolved merge still name (the higher attempt where the sides differ).
    const attempts = await recordedAttempts(paths.lock, existing?.lock, { sides: true });
    const runs = withAttempts(m, samples, attempts).map((s) => newRun(m, s));
    const remote = projectRemote(m, opts);
    // A teammate's answers may be on the remote only: fetched, never requested.
    const cached = new CacheResolver(cache);
    const linked = remote ? await BuildRemote.open(cache, remote, { upload: false, events: opts.events ?? {} }) : undefined;
    const hooks = linked?.hooks();
    const resolver: Resolver = hooks
      ? {
          answer: async (key, req, sample, step) =>
            (await cached.answer(key, req, sample, step)) ?? ((await hooks.fetch(key)) ? cached.answer(key, req, sample, step) : undefined),
        }
      : cached;
    await walk(m, runs, { cached: resolver, width: 64, providerOverride: offline ? "echo" : undefined, signal: opts.signal });
    const next = assembleLock(m, runs, await emit(m, runs, { write: false }), offline);
    const text = serializeLock(next);
    const written = hash64(text) !== existing?.hash;
    if (written) await writeFileAtomic(paths.lock, text);
    const missing = runs.filter((r) => r.status === "pending").map((r) => ({ sample: r.sample.id, step: m.steps[r.cursor]?.id ?? "" }));
    return { samples: runs.length, complete: runs.length - missing.length, missing, written };
  } finally {
    await unuse();
    cache.close();
    await release();
  }
}
