import { rm, stat } from "node:fs/promises";
import { UsageError } from "../errors.js";
import { readLock } from "../lock/lockfile.js";
import { type CommonOptions, openProject } from "./context.js";

export interface GcResult {
  kept: number;
  removed: number;
  bytes: number;
  dryRun: boolean;
}

/**
 * Remove cache entries that dataset.lock does not reference (and temp files of killed writers).
 * Only this manifest's lock counts: do not gc a cache shared with other projects.
 */
export async function gc(opts: CommonOptions & { dryRun?: boolean } = {}): Promise<GcResult> {
  const { manifest, paths, cache } = await openProject(opts);
  const existing = await readLock(paths.lock);
  if (!existing)
    throw new UsageError("no dataset.lock: gc keeps what the lock references, so without one it would remove everything", "run `synthbuild build` first");
  if (existing.lock.header.name !== manifest.name)
    throw new UsageError(
      `dataset.lock is for '${existing.lock.header.name}', not '${manifest.name}': gc would remove this manifest's answers`,
      "run `synthbuild build` to write this manifest's lock first",
    );
  const live = new Set<string>();
  for (const s of existing.lock.samples) for (const st of Object.values(s.steps)) if (st.key) live.add(st.key);
  const { keys, strays } = await cache.list();
  let removed = 0;
  let bytes = 0;
  const doomed = [...keys.filter((k) => !live.has(k)).map((k) => cache.pathOf(k)), ...strays];
  for (const path of doomed) {
    bytes += (await stat(path).catch(() => ({ size: 0 }))).size;
    if (!opts.dryRun) await rm(path, { force: true });
    removed++;
  }
  return { kept: keys.length - (doomed.length - strays.length), removed, bytes, dryRun: opts.dryRun ?? false };
}
