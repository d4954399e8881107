import type { Sample } from "../expand/sample.js";
import { headerTarget } from "../expand/target.js";
import type { Lock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import { globTexts, stepRecipe } from "../plan/recipe.js";
import { KEY_VERSION } from "../plan/request.js";
import { BEYOND_TARGET } from "../plan/target-rows.js";
import { RENDER_VERSION } from "../template/engine.js";

/** What an up-to-date lock says about the build, without a single run rebuilt. */
export interface CurrentLock {
  ok: true;
  /** Per step: how many samples reached it. */
  reached: number[];
  kept: number;
  dropped: number;
  /** Cache keys the lock names: all must still be in the cache. */
  keys: string[];
}

export type LockCheck = CurrentLock | { ok: false; why: string };

/**
 * The make-style check: if the lock holds exactly these samples and every step's recipe still
 * matches, the lock already says what every request and answer were, and a no-op build is
 * decided without rendering a template or opening a cache entry. Otherwise, why not (the first
 * difference found, for `build --verbose`; `plan --explain` says it per sample).
 */
export function currentLock(m: Manifest, samples: Sample[], lock: Lock, offline: boolean): LockCheck {
  const no = (why: string): LockCheck => ({ ok: false, why });
  const h = lock.header;
  if (h.name !== m.name) return no(`the lock is for '${h.name}', the manifest is '${m.name}'`);
  if ((h.offline ?? false) !== offline) return no(`the lock was built ${h.offline ? "" : "without "}--offline`);
  if (h.versions.key !== KEY_VERSION || h.versions.render !== RENDER_VERSION)
    return no("the lock was built by a synthbuild whose cache keys or rendering differ from this one's");
  const defs = h.steps;
  if (Object.keys(defs).length !== m.steps.length) return no("steps were added or removed");
  for (const s of m.steps) if (defs[s.id]?.def !== s.defHash) return no(`step '${s.id}' changed`);
  const want = headerTarget(m);
  if (h.target?.rows !== want?.rows || h.target?.max_candidates !== want?.max_candidates)
    return no(`target: was ${describeTarget(h.target)} in the lock, is ${describeTarget(want)} now`);
  // Short of the rows with candidates left: a build would try more (a lock no build of ours writes).
  if (want && h.kept < want.rows && h.samples < want.max_candidates)
    return no(`the lock has ${h.kept} of target.rows ${want.rows}, with candidates left to try`);
  if (lock.samples.length !== samples.length) return no(`the lock has ${lock.samples.length} samples, the manifest ${samples.length}`);
  const byId = new Map(lock.samples.map((s) => [s.id, s]));
  const stepIndex = new Map(m.steps.map((s, i) => [s.id, i]));
  const state: CurrentLock = { ok: true, reached: m.steps.map(() => 0), kept: 0, dropped: 0, keys: [] };
  for (const sample of samples) {
    const ls = byId.get(sample.id);
    if (!ls) return no(`sample ${sample.id} is not in the lock`);
    if (ls.status !== "kept" && ls.status !== "dropped") return no(`sample ${sample.id} was ${ls.status} in the last build`);
    if (ls.texts !== globTexts(m, sample)) return no(`a file sample ${sample.id} reads changed`);
    // A row beyond target.rows went through every step and was kept by all of them.
    const stopAt = ls.status === "dropped" && ls.reason?.step !== BEYOND_TARGET ? stepIndex.get(ls.reason?.step ?? "") : m.steps.length - 1;
    if (stopAt === undefined) return no(`sample ${sample.id} was dropped by a step that is gone`);
    const outOf = (id: string) => ls.steps[id]?.out;
    let n = 0;
    for (const id in ls.steps) if (ls.steps[id]) n++;
    if (n !== stopAt + 1) return no(`sample ${sample.id} went through other steps`);
    for (let i = 0; i <= stopAt; i++) {
      const step = m.steps[i]!;
      const e = ls.steps[step.id];
      if (!e || stepRecipe(m, step, sample, outOf, offline) !== e.r) return no(`sample ${sample.id}: what step '${step.id}' reads changed`);
      if (e.key) state.keys.push(e.key);
      state.reached[i]!++;
    }
    state[ls.status]++;
  }
  return state;
}

function describeTarget(t: { rows: number; max_candidates: number } | undefined): string {
  return t ? `{ rows: ${t.rows}, max_candidates: ${t.max_candidates} }` : "unset";
}
