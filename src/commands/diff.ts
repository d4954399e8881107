import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { UsageError } from "../errors.js";
import { diffLocks, type LockDiff } from "../lock/diff.js";
import { lockAtRevision } from "../lock/git.js";
import { type Lock, readLock } from "../lock/lockfile.js";
import { initHashing } from "../util/hash.js";
import { type CommonOptions, locateProject } from "./context.js";

export interface DiffOptions extends CommonOptions {
  /** A lock file or a git revision (default: the lock committed at HEAD). */
  from?: string;
  /** A lock file or a git revision (default: the working lock). */
  to?: string;
}

export interface DiffResult extends LockDiff {
  from: string;
  to: string;
}

/**
 * Two releases side by side: `diff` (HEAD's lock against the working one), `diff v1` (a tag, a
 * branch or a commit against the working lock), `diff v1 v2`, or lock files. Reads only locks:
 * no manifest, cache or request is needed.
 */
export async function diff(opts: DiffOptions = {}): Promise<DiffResult> {
  await initHashing();
  const { paths } = locateProject(opts);
  const from = opts.from ?? "HEAD";
  const a = await lockOf(from, paths.lock, opts.cwd);
  const b = opts.to === undefined ? await working(paths.lock) : await lockOf(opts.to, paths.lock, opts.cwd);
  return { from, to: opts.to ?? "the working lock", ...diffLocks(a, b) };
}

async function working(path: string): Promise<Lock> {
  const l = await readLock(path);
  if (!l) throw new UsageError(`no ${path.split("/").pop()} in the working tree`, "run `synthbuild build` first, or name two revisions: synthbuild diff v1 v2");
  return l.lock;
}

/** A lock file if `ref` names one, else the lock committed at the git revision `ref`. */
async function lockOf(ref: string, lockPath: string, cwd?: string): Promise<Lock> {
  const file = resolve(cwd ?? process.cwd(), ref);
  if (existsSync(file)) return working(file);
  const l = await lockAtRevision(lockPath, ref);
  if (!l)
    throw new UsageError(
      `'${ref}' is neither a lock file nor a git revision with a committed ${lockPath.split("/").pop()}`,
      "name a file, a tag, a branch or a commit",
    );
  return l;
}
