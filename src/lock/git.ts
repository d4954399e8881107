import { execFile } from "node:child_process";
import { dirname, relative } from "node:path";
import { promisify } from "node:util";
import { type Lock, parseLock } from "./lockfile.js";

const run = promisify(execFile);

/** `git` in the lock's folder; undefined when it is not a repository or git is not installed. */
async function git(cwd: string, args: string[]): Promise<string | undefined> {
  try {
    const { stdout } = await run("git", args, { cwd, maxBuffer: 1 << 30, encoding: "utf8" });
    return stdout;
  } catch {
    return undefined;
  }
}

/** The lock file as committed at a revision (a branch, a tag, a commit), or undefined if it is not there. */
export async function lockAtRevision(lockPath: string, rev: string): Promise<Lock | undefined> {
  const text = await git(dirname(lockPath), ["show", `${rev}:${await pathInRepo(lockPath)}`]);
  return text === undefined ? undefined : parseLock(text);
}

/**
 * The locks every branch and tag has committed (remote branches included: a teammate's release
 * branch counts). Locks that cannot be read (an older format, a conflict committed by mistake)
 * are counted, not fatal. `repository: false` when the project is not in a git repository.
 */
export async function locksOfRefs(lockPath: string): Promise<{ repository: boolean; locks: { ref: string; lock: Lock }[]; unreadable: string[] }> {
  const cwd = dirname(lockPath);
  const refs = await git(cwd, ["for-each-ref", "--format=%(refname)", "refs/heads", "refs/tags", "refs/remotes"]);
  if (refs === undefined) return { repository: false, locks: [], unreadable: [] };
  const locks: { ref: string; lock: Lock }[] = [];
  const unreadable: string[] = [];
  const seen = new Set<string>();
  for (const ref of refs.split("\n").filter(Boolean)) {
    // Many refs point at one commit: read each committed lock once.
    const blob = (await git(cwd, ["rev-parse", "--verify", "-q", `${ref}:${await pathInRepo(lockPath)}`]))?.trim();
    if (!blob || seen.has(blob)) continue;
    seen.add(blob);
    try {
      const text = await git(cwd, ["cat-file", "blob", blob]);
      if (text !== undefined) locks.push({ ref, lock: parseLock(text) });
    } catch {
      unreadable.push(ref);
    }
  }
  return { repository: true, locks, unreadable };
}

let tops = new Map<string, Promise<string>>();
async function pathInRepo(lockPath: string): Promise<string> {
  const cwd = dirname(lockPath);
  let p = tops.get(cwd);
  if (!p) {
    p = git(cwd, ["rev-parse", "--show-toplevel"]).then((t) =>
      relative((t ?? "").trim(), lockPath)
        .split("\\")
        .join("/"),
    );
    tops.set(cwd, p);
    if (tops.size > 64) tops = new Map();
  }
  return p;
}

/**
 * While a merge of the lock is unresolved, git's index holds both sides whole (stages 2 and 3),
 * whatever is in the working file: conflict markers, or one side only under `dataset.lock -merge`.
 * Their texts, or none once the merge is resolved (or outside a repository).
 */
export async function lockMergeSides(lockPath: string): Promise<string[]> {
  const cwd = dirname(lockPath);
  const path = await pathInRepo(lockPath);
  const sides: string[] = [];
  for (const stage of [2, 3]) {
    const text = await git(cwd, ["show", `:${stage}:${path}`]);
    if (text !== undefined) sides.push(text);
  }
  return sides;
}
