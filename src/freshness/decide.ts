import type { Cache } from "../cache/store.js";
import type { Sample } from "../expand/sample.js";
import type { Lock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import { cardProblem } from "../output/card.js";
import { outputsDiffer } from "../output/read-back.js";
import { hash64 } from "../util/hash.js";
import { type CurrentLock, currentLock } from "./current.js";

export type Decision = { upToDate: true; current: CurrentLock } | { upToDate: false; why: string };

export interface DecideOptions {
  offline: boolean;
  /**
   * Read every answer the lock names and check it whole and equal to what the lock recorded, not
   * only present: what a release gate (`--frozen`) and `verify` need. A no-op build checks
   * presence, which a sound memo makes cheap.
   */
  content?: boolean;
}

/**
 * Is the dataset up to date? The one answer `build`, `plan`, `verify` and `--frozen` share: the
 * lock matches the manifest (every sample's every step's recipe), every answer it names is in
 * the cache, and every output on disk is what the lock says. The up-to-date stamp (stamp.ts) is
 * only a memo of a "yes" from here, and a differential test holds the two together.
 */
export async function decide(
  m: Manifest,
  samples: Sample[],
  cache: Cache,
  existing: { lock: Lock; hash: string } | undefined,
  opts: DecideOptions,
): Promise<Decision> {
  if (!existing) return { upToDate: false, why: "there is no lock yet" };
  const current = currentLock(m, samples, existing.lock, opts.offline);
  if (!current.ok) return { upToDate: false, why: current.why };
  const missing = opts.content ? (await answerProblems(cache, existing.lock, 1))[0] : cache.firstMissing(current.keys, existing.hash);
  if (missing) return { upToDate: false, why: opts.content ? missing : `answer ${missing} is not in the cache` };
  const outputs = (await outputsDiffer(m, existing.lock)) ?? (await cardProblem(m, existing.lock, existing.hash));
  if (outputs) return { upToDate: false, why: outputs };
  return { upToDate: true, current };
}

/** Answers the lock names that are missing, corrupt, or not the answer the lock recorded (up to `limit`). */
export async function answerProblems(cache: Cache, lock: Lock, limit = Infinity): Promise<string[]> {
  const problems: string[] = [];
  for (const s of lock.samples) {
    for (const [step, st] of Object.entries(s.steps)) {
      if (!st.key) continue;
      const e = await cache.get(st.key, { evict: false });
      if (!e) problems.push(`sample ${s.id} step ${step}: answer ${st.key} is ${(await cache.has(st.key)) ? "corrupt in" : "not in"} the cache`);
      else if (st.out && hash64(e.response.text) !== st.out) problems.push(`sample ${s.id} step ${step}: the cached answer is not the one the lock recorded`);
      if (problems.length >= limit) return problems;
    }
  }
  return problems;
}
