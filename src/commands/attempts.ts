import { readFile } from "node:fs/promises";
import { type AttemptsById, attemptsInText, attemptsOfLock, mergeAttempts } from "../lock/attempts.js";
import { lockMergeSides } from "../lock/git.js";
import type { Lock } from "../lock/lockfile.js";

/**
 * The attempts a project has recorded (`synthbuild reroll`): the lock's, or, when the lock does
 * not parse (a conflicted merge, a torn hand edit), whatever sample lines in it still name. A lock
 * rewritten from such a file would otherwise forget every reroll and release the first draws.
 * `sides`: also both sides of an unresolved git merge of the lock (`synthbuild lock`), which git
 * keeps in its index even where the working file holds one side only.
 */
export async function recordedAttempts(lockPath: string, lock: Lock | undefined, opts: { sides?: boolean } = {}): Promise<AttemptsById> {
  const own = lock ? attemptsOfLock(lock) : attemptsInText(await readFile(lockPath, "utf8").catch(() => ""));
  if (!opts.sides) return own;
  return mergeAttempts(own, ...(await lockMergeSides(lockPath)).map(attemptsInText));
}
