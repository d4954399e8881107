import { pull as pullKeys, type TransferResult } from "../cache/sync.js";
import { useCache } from "../cache/users.js";
import { openProject } from "./context.js";
import type { SyncOptions } from "./push.js";
import { lockedKeys, requireRemote } from "./remote.js";

export interface PullSummary extends TransferResult {
  remote: string;
}

/** Download every answer the lock references that the local cache lacks, each validated before it is stored. */
export async function pull(opts: SyncOptions = {}): Promise<PullSummary> {
  const project = await openProject(opts);
  const remote = requireRemote(project.manifest, opts, "pull");
  const keys = await lockedKeys(project, "pull");
  // What is pulled is appended to the pack: gc must wait, as it does for a build.
  const unuse = await useCache(project.paths.cacheDir, (what) => opts.events?.warn?.(what), opts.signal);
  try {
    const r = await pullKeys(project.cache, remote, keys, { concurrency: opts.concurrency });
    return { remote: remote.description, ...r };
  } finally {
    await unuse();
    project.cache.close();
  }
}
