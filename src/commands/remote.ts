import { openRemote } from "../cache/remote/open.js";
import type { Remote } from "../cache/remote/types.js";
import { UsageError } from "../errors.js";
import { readLock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import type { CommonOptions, Project } from "./context.js";

/** The remote `--remote` or the manifest's `cache.remote` names; its other settings (endpoint...) still apply. */
export function projectRemote(manifest: Manifest, opts: CommonOptions): Remote | undefined {
  const url = opts.remote ?? manifest.cache?.remote;
  if (!url) return undefined;
  const c = manifest.cache;
  return openRemote({ url, endpoint: c?.endpoint, region: c?.region, pathStyle: c?.pathStyle }, opts.cwd ?? process.cwd(), opts.env ?? process.env);
}

export function requireRemote(manifest: Manifest, opts: CommonOptions, command: string): Remote {
  const remote = projectRemote(manifest, opts);
  if (!remote)
    throw new UsageError(
      `${command} needs a remote cache, and none is configured`,
      "add `cache: { remote: s3://bucket/prefix }` (or a shared folder path) to the manifest, or pass --remote URL",
    );
  return remote;
}

/** Every cache key the lock references: the answers a release needs. */
export async function lockedKeys(project: Project, command: string): Promise<string[]> {
  const existing = await readLock(project.paths.lock);
  if (!existing)
    throw new UsageError(
      `no ${project.paths.lock.split("/").pop()}: ${command} moves the answers the lock references`,
      "run `synthbuild build` first, or check out the lock",
    );
  const keys = new Set<string>();
  for (const s of existing.lock.samples) for (const st of Object.values(s.steps)) if (st.key) keys.add(st.key);
  return [...keys].sort();
}
