import { type PushResult, push as pushKeys } from "../cache/sync.js";
import { type CommonOptions, openProject } from "./context.js";
import { lockedKeys, requireRemote } from "./remote.js";

export interface SyncOptions extends CommonOptions {
  /** Transfers in flight at once (default 16). */
  concurrency?: number;
}

export interface PushSummary extends PushResult {
  remote: string;
}

/** Upload every answer the lock references that the remote lacks. */
export async function push(opts: SyncOptions = {}): Promise<PushSummary> {
  const project = await openProject(opts);
  const remote = requireRemote(project.manifest, opts, "push");
  const keys = await lockedKeys(project, "push");
  const r = await pushKeys(project.cache, remote, keys, { concurrency: opts.concurrency });
  return { remote: remote.description, ...r };
}
