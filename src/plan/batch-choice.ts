import type { GenerateStep, Step } from "../manifest/types.js";

/**
 * Whether a generate step's requests go to the Batch API: `mode: batch` always, `mode: auto` when
 * the step needs more than `batch_above` of them; never offline or for the echo provider, whose
 * answers are made on the spot. The one decision `plan` prices and `build` sends by.
 */
export function batches(step: GenerateStep, requests: number, offline: boolean): boolean {
  const mode = step.model.mode;
  if (!mode || offline || step.model.provider === "echo") return false;
  return mode === "batch" || requests > (step.model.batchAbove ?? 0);
}

/**
 * Requests each generate step before `end` will make for these samples, each stopped (on a miss)
 * at step `cursor`: the step it stopped on and every generate step after it. What `batches`
 * counts, in plan and build alike.
 */
export function requestsByStep(steps: readonly Step[], cursors: Iterable<number>, end = steps.length): Map<string, number> {
  const n = new Map<string, number>();
  for (const c of cursors)
    for (let i = c; i < end; i++) {
      const s = steps[i]!;
      if (s.kind === "generate") n.set(s.id, (n.get(s.id) ?? 0) + 1);
    }
  return n;
}

/** The steps among these whose requests are batched, given their counts. */
export function batchedSteps(steps: readonly Step[], counts: ReadonlyMap<string, number>, offline: boolean): Set<string> {
  const out = new Set<string>();
  for (const s of steps) if (s.kind === "generate" && batches(s, counts.get(s.id) ?? 0, offline)) out.add(s.id);
  return out;
}
