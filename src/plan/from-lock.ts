import type { Sample } from "../expand/sample.js";
import type { Lock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import type { SampleRun, StepRecord } from "./pipeline.js";
import { stepRecipe } from "./recipe.js";

/**
 * The make-style fast path: if the lock holds exactly these samples and every step's recipe
 * still matches, the lock already says what every request and answer were, and the runs can be
 * rebuilt from it without rendering a template or opening a cache entry. Anything that differs
 * returns undefined and the caller takes the full path.
 */
export function runsFromLock(m: Manifest, samples: Sample[], lock: Lock, offline: boolean): SampleRun[] | undefined {
  if (lock.samples.length !== samples.length || lock.header.name !== m.name || (lock.header.offline ?? false) !== offline) return undefined;
  const byId = new Map(lock.samples.map((s) => [s.id, s]));
  const stepIndex = new Map(m.steps.map((s, i) => [s.id, i]));
  const runs: SampleRun[] = [];
  for (const sample of samples) {
    const ls = byId.get(sample.id);
    if (!ls || (ls.status !== "kept" && ls.status !== "dropped")) return undefined;
    const stopAt = ls.status === "dropped" ? stepIndex.get(ls.reason?.step ?? "") : m.steps.length - 1;
    if (stopAt === undefined) return undefined;
    const outs = new Map<string, string | undefined>();
    const steps: StepRecord[] = [];
    for (let i = 0; i <= stopAt; i++) {
      const step = m.steps[i]!;
      const e = ls.steps[step.id];
      if (!e) return undefined;
      const recipe = step.kind === "dedupe" ? step.defHash : stepRecipe(m, step, sample, outs, offline);
      if (recipe !== e.r) return undefined;
      outs.set(step.id, e.out);
      steps.push({
        id: step.id,
        kind: step.kind,
        status: step.kind === "generate" ? "cached" : "computed",
        key: e.key,
        out: e.out,
        def: e.def,
        recipe,
        finishReason: e.finish,
        model: e.model,
        fingerprint: e.fp,
        usage: e.usage ? { input: e.usage[0], output: e.usage[1] } : undefined,
        offline: e.offline,
      });
    }
    if (Object.keys(ls.steps).length !== steps.length) return undefined;
    runs.push({
      sample,
      scope: {},
      steps,
      status: ls.status,
      cursor: m.steps.length,
      stoppedBy: ls.reason ? { step: ls.reason.step, reason: ls.reason.why } : undefined,
      truncated: new Set(),
      outs,
    });
  }
  return runs;
}
