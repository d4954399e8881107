import type { Sample } from "../expand/sample.js";
import type { AttemptsById } from "../lock/attempts.js";
import type { Manifest } from "../manifest/types.js";

/**
 * The samples with the attempts the lock records for them (`synthbuild reroll`). The manifest
 * cannot say which draw of a sample was released; the lock, committed beside it, does, so every
 * command that builds, plans or checks reads them from there. Attempts of steps that are no longer
 * generate steps of the manifest are left behind: they name no request.
 */
export function withAttempts(m: Manifest, samples: Sample[], attempts: AttemptsById): Sample[] {
  if (attempts.size === 0) return samples;
  const generate = new Set(m.steps.filter((s) => s.kind === "generate").map((s) => s.id));
  return samples.map((s) => {
    const a = attempts.get(s.id);
    if (!a) return s;
    const kept = Object.fromEntries(Object.entries(a).filter(([step, n]) => generate.has(step) && n >= 1));
    return Object.keys(kept).length ? { ...s, attempts: kept } : s;
  });
}

/** The attempt a sample's step is on: 0 when never rerolled. */
export function attemptOf(sample: Sample, stepId: string): number {
  return sample.attempts?.[stepId] ?? 0;
}
