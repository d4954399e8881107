import { CACHE_FORMAT, type Cache } from "../cache/store.js";
import { useCache } from "../cache/users.js";
import { UsageError } from "../errors.js";
import { answerFromEntry } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import type { Sample } from "../expand/sample.js";
import type { Manifest } from "../manifest/types.js";
import { newRun, type Resolver } from "../plan/pipeline.js";
import { requestKeyV1 } from "../plan/request.js";
import { type CommonOptions, openProject } from "./context.js";

export interface MigrateOptions extends CommonOptions {
  /** The key version the cache's answers were stored under (only 1 is known). */
  fromKey: number;
  offline?: boolean;
}

export interface MigrateResult {
  /** Answers copied to their key-version-2 key. */
  migrated: number;
  /** Requests whose answer already had a current key. */
  current: number;
  /** Requests with no answer under either key: a build requests them. */
  missing: number;
}

/**
 * Carry answers paid for under an older cache key over to the current one, for this manifest's
 * requests. Key version 2 added the endpoint to the key, which version 1 did not record: this
 * command is the user saying "the answers in this cache came from the endpoints this manifest
 * names now". Nothing is requested and nothing is removed (`gc` removes the old entries later).
 */
export async function migrate(opts: MigrateOptions): Promise<MigrateResult> {
  if (opts.fromKey !== 1)
    throw new UsageError(`no migration from cache key version ${opts.fromKey}`, "the one migration there is: --from-key 1 (synthbuild 0.1's caches)");
  const { manifest: m, paths, cache, samples } = await openProject(opts);
  // Migrated answers are appended to the pack: gc must wait, as it does for a build.
  const unuse = await useCache(paths.cacheDir, (what) => opts.events?.warn?.(what), opts.signal);
  try {
    return await migrateAll(m, cache, samples, opts);
  } finally {
    await unuse();
    cache.close();
  }
}

async function migrateAll(m: Manifest, cache: Cache, samples: Sample[], opts: MigrateOptions): Promise<MigrateResult> {
  const result: MigrateResult = { migrated: 0, current: 0, missing: 0 };
  const resolver: Resolver = {
    answer: async (key, req) => {
      const now = await cache.get(key);
      if (now) {
        result.current++;
        return answerFromEntry(now, true);
      }
      const old = await cache.get(requestKeyV1(req));
      if (!old) {
        result.missing++;
        return undefined;
      }
      const stored = await cache.put({ ...old, format: CACHE_FORMAT, key, request: req });
      result.migrated++;
      return answerFromEntry(stored, true);
    },
  };
  // Step by step: a later step's request renders from the earlier step's (migrated) answer.
  await walk(
    m,
    samples.map((s) => newRun(m, s)),
    { cached: resolver, width: 64, providerOverride: opts.offline ? "echo" : undefined, signal: opts.signal },
  );
  return result;
}
