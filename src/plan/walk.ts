import type { Manifest } from "../manifest/types.js";
import { advance, applyDedupe, barriers, forEachConcurrent, type PipelineOptions, type Resolver, type SampleRun } from "./pipeline.js";

export interface WalkOptions extends PipelineOptions {
  /** Answers from the cache alone. */
  cached: Resolver;
  /** Requests what the cache lacks; absent for plan, show and --frozen. */
  requesting?: Resolver;
  /** Samples in flight at once. */
  width: number;
  /** Called before each requesting pass with the samples about to request, for progress totals. */
  onPending?: (pending: SampleRun[], end: number) => void;
}

/**
 * Take every sample as far as it can go. Per segment (the steps between dataset-level ones): first
 * a pass that uses only the cache, so the number of requests is known before any is made; then,
 * when requesting, a pass over the samples that stopped on a miss; then the dataset-level step
 * over everything that is complete.
 */
export async function walk(m: Manifest, runs: SampleRun[], opts: WalkOptions): Promise<void> {
  const ends = [...barriers(m.steps), m.steps.length];
  for (const end of ends) {
    const live = runs.filter((r) => (r.status === "kept" || r.status === "pending") && r.cursor < end);
    await forEachConcurrent(live, opts.width, (run) => advance(m, run, end, opts.cached, opts));
    if (opts.requesting) {
      const pending = live.filter((r) => r.status === "pending");
      if (pending.length) {
        opts.onPending?.(pending, end);
        await forEachConcurrent(pending, opts.width, (run) => advance(m, run, end, opts.requesting!, opts));
      }
    }
    const step = m.steps[end];
    if (step?.kind === "dedupe") {
      const complete = runs.filter((r) => r.status === "kept" && r.cursor === end);
      applyDedupe(step, complete);
      for (const r of complete) r.cursor = end + 1;
    }
  }
}
