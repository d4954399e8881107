import type { Sample } from "../expand/sample.js";
import type { Lock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import { globTexts, stepRecipe } from "./recipe.js";

/** What an up-to-date lock says about the build, without a single run rebuilt. */
export interface CurrentLock {
  /** Per step: how many samples reached it. */
  reached: number[];
  kept: number;
  dropped: number;
  /** Cache keys the lock names: all must still be in the cache. */
  keys: string[];
}

/**
 * The make-style fast path: if the lock holds exactly these samples and every step's recipe still
 * matches, the lock already says what every request and answer were; a no-op build is decided
 * without rendering a template or opening a cache entry. Anything that differs returns undefined
 * and the caller takes the full path.
 */
export function currentLock(m: Manifest, samples: Sample[], lock: Lock, offline: boolean): CurrentLock | undefined {
  if (lock.samples.length !== samples.length || lock.header.name !== m.name || (lock.header.offline ?? false) !== offline) return undefined;
  const defs = lock.header.steps ?? {};
  if (Object.keys(defs).length !== m.steps.length || m.steps.some((s) => defs[s.id] !== s.defHash)) return undefined;
  const byId = new Map(lock.samples.map((s) => [s.id, s]));
  const stepIndex = new Map(m.steps.map((s, i) => [s.id, i]));
  const state: CurrentLock = { reached: m.steps.map(() => 0), kept: 0, dropped: 0, keys: [] };
  for (const sample of samples) {
    const ls = byId.get(sample.id);
    if (!ls || (ls.status !== "kept" && ls.status !== "dropped")) return undefined;
    if (ls.texts !== globTexts(m, sample)) return undefined;
    const stopAt = ls.status === "dropped" ? stepIndex.get(ls.reason?.step ?? "") : m.steps.length - 1;
    if (stopAt === undefined) return undefined;
    const outOf = (id: string) => ls.steps[id]?.out;
    let n = 0;
    for (const id in ls.steps) if (ls.steps[id]) n++;
    if (n !== stopAt + 1) return undefined;
    for (let i = 0; i <= stopAt; i++) {
      const step = m.steps[i]!;
      const e = ls.steps[step.id];
      if (!e) return undefined;
      const recipe = step.kind === "dedupe" ? step.defHash : stepRecipe(m, step, sample, outOf, offline);
      if (recipe !== e.r) return undefined;
      if (e.key) state.keys.push(e.key);
      state.reached[i]!++;
    }
    state[ls.status]++;
  }
  return state;
}
