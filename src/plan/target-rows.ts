import type { Target } from "../manifest/types.js";
import type { SampleRun } from "./pipeline.js";

/** The step a row beyond target.rows is dropped by: not a step id (ids cannot hold a dot), and what the summary should name. */
export const BEYOND_TARGET = "target.rows";

/**
 * Keep the first `rows` kept runs in candidate order (the order `runs` is in) and drop the rest.
 * Every run's status depends only on the candidates before it, so the kept ones are a prefix of
 * what a larger target would keep: lowering rows keeps a prefix, raising it keeps every row.
 * The rest stay in the lock as dropped, so their paid answers are kept for a later raise.
 */
export function dropBeyondTarget(t: Target, runs: readonly SampleRun[]): void {
  let kept = 0;
  for (const run of runs) {
    if (run.status !== "kept") continue;
    if (++kept <= t.rows) continue;
    run.status = "dropped";
    run.stoppedBy = { step: BEYOND_TARGET, reason: `beyond target.rows (${t.rows})` };
  }
}
