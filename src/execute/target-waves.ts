import { candidates } from "../expand/expand.js";
import { nextWave } from "../expand/target.js";
import type { Manifest } from "../manifest/types.js";
import { newRun, type SampleRun } from "../plan/pipeline.js";

/**
 * Walk the runs, then, with `target:`, add waves of further candidates (appended to `runs`, in
 * candidate order) while fewer than target.rows are kept and max_candidates allow. Each wave is
 * sized by the keep rate seen so far. A wave that leaves samples pending (--limit, --max-cost)
 * ends the topping up: their rows are unknown, and more requests are what was held back.
 */
export async function walkWaves(m: Manifest, runs: SampleRun[], walkOnce: () => Promise<void>, onWave?: (added: number, kept: number) => void): Promise<void> {
  await walkOnce();
  const t = m.target;
  if (!t) return;
  for (;;) {
    if (runs.some((r) => r.status === "pending")) return;
    const kept = runs.reduce((n, r) => n + (r.status === "kept" ? 1 : 0), 0);
    const size = nextWave(t, runs.length, kept);
    if (size === 0) return;
    const more = candidates(m, runs.length + size).slice(runs.length);
    // No combinations at all: nothing to repeat.
    if (more.length === 0) return;
    for (const s of more) runs.push(newRun(m, s));
    onWave?.(more.length, kept);
    await walkOnce();
  }
}
