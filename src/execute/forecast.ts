import type { Manifest } from "../manifest/types.js";
import { barriers, newRun, type Resolver, type SampleRun } from "../plan/pipeline.js";
import type { PendingRun } from "./walk.js";
import { walk } from "./walk.js";

/**
 * Requests a build will make, per segment (keyed by the index of the step that ends it: a dedupe,
 * or the step count). The progress total is announced from these, and each segment's scan
 * re-counts its own with the same function, so the two can only differ by what the build learned
 * since (a dedupe's drops, a failure): one count, in one place.
 */
export function requestsBySegment(m: Manifest, pending: readonly PendingRun[]): Map<number, number> {
  const ends = [...barriers(m.steps), m.steps.length];
  const by = new Map<number, number>();
  // Samples that send the very same request share one answer, and one request.
  const keys = new Set<string>();
  for (const p of pending) {
    if (p.key !== undefined && keys.has(p.key)) continue;
    if (p.key !== undefined) keys.add(p.key);
    for (let i = p.cursor, e = 0; i < m.steps.length; i++) {
      while (ends[e]! <= i) e++;
      if (m.steps[i]!.kind === "generate") by.set(ends[e]!, (by.get(ends[e]!) ?? 0) + 1);
    }
  }
  return by;
}

/** Whether a dataset-level step comes before a generate step: only then does a segment's scan leave later requests uncounted. */
export function needsForecast(m: Manifest): boolean {
  const first = barriers(m.steps)[0];
  return first !== undefined && m.steps.slice(first).some((s) => s.kind === "generate");
}

/**
 * The requests of every segment, before any is made: a walk on copies of the samples that reads
 * only the cache (dedupes applied to what the cache completes), as `plan` walks. A sample that
 * stops on a miss is counted for every generate step after it, as if none were dropped: an upper
 * bound that the build lowers as dedupes and failures rule requests out, so the total never grows
 * from a dedupe. A run step is not called here (its module may be slow): a sample that reaches
 * one counts as stopped there.
 */
export async function forecast(
  m: Manifest,
  live: readonly SampleRun[],
  cached: Resolver,
  opts: { width: number; providerOverride?: "echo"; admit: (pending: PendingRun[]) => PendingRun[] },
): Promise<Map<number, number>> {
  const copies = live.map((r) => newRun(m, r.sample));
  const missed = new WeakMap<SampleRun, string>();
  await walk(m, copies, {
    cached,
    width: opts.width,
    providerOverride: opts.providerOverride,
    runModule: async () => ({ interrupted: true }),
    onMiss: (run, _req, _step, key) => missed.set(run, key),
  });
  const pending = copies.flatMap((r) => (r.status === "pending" ? [{ run: r, cursor: r.cursor, key: missed.get(r) }] : []));
  // --limit admits samples in the order misses are found: a segment's before the next one's.
  const order = [...barriers(m.steps), m.steps.length];
  const segment = (c: number) => order.findIndex((e) => e > c);
  pending.sort((a, b) => segment(a.cursor) - segment(b.cursor));
  return requestsBySegment(m, opts.admit(pending));
}
