import { headerTarget } from "../expand/target.js";
import { LOCK_FORMAT, type Lock, type LockHeader, type LockSample, type LockStep } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import type { SampleRun } from "../plan/pipeline.js";
import { globTexts } from "../plan/recipe.js";
import { KEY_VERSION } from "../plan/request.js";
import { RENDER_VERSION } from "../template/engine.js";
import type { EmitResult } from "./emit.js";

/** What the lock pins: every sample's values, each step's hashes and answering model, and each output's hash. */
export function assembleLock(m: Manifest, runs: SampleRun[], emitted: EmitResult, offline = false): Lock {
  const count = { kept: 0, dropped: 0, failed: 0, pending: 0 };
  const samples: LockSample[] = runs.map((run) => {
    count[run.status]++;
    const values: Record<string, string> = {};
    for (const [i, d] of m.dimensions.entries()) values[d.name] = run.sample.values[i]!.key;
    const steps: Record<string, LockStep> = {};
    for (const s of run.steps) {
      const e: LockStep = { r: s.recipe };
      if (s.key) e.key = s.key;
      if (s.out) e.out = s.out;
      if (s.model) e.model = s.model;
      if (s.fingerprint) e.fp = s.fingerprint;
      if (s.finishReason) e.finish = s.finishReason;
      if (s.usage) e.usage = [s.usage.input, s.usage.output];
      if (s.batch) e.batch = s.batch;
      steps[s.id] = e;
    }
    const entry: LockSample = { id: run.sample.id, values, repeat: run.sample.repeat, status: run.status, steps };
    const texts = globTexts(m, run.sample);
    if (texts) entry.texts = texts;
    if (run.stoppedBy) entry.reason = { step: run.stoppedBy.step, why: run.stoppedBy.reason };
    if (run.status === "pending") entry.reason = { step: m.steps[run.cursor]?.id ?? "", why: "not built yet" };
    // Kept whatever became of the sample (failed, pending, dropped): the next build asks again for the same attempt.
    if (run.sample.attempts) entry.attempts = { ...run.sample.attempts };
    const split = emitted.splits.get(run.sample.id);
    if (split) entry.split = split;
    return entry;
  });
  return {
    header: lockHeader(m, count, runs.length, offline),
    outputs: emitted.outputs,
    samples,
  };
}

/** What the lock says about the manifest as a whole: what `plan --explain` and `diff` compare. */
export function lockHeader(
  m: Manifest,
  count: { kept: number; dropped: number; failed: number; pending: number },
  samples: number,
  offline: boolean,
): LockHeader {
  const { mode, n, repeat } = m.combine;
  return {
    lockfile: LOCK_FORMAT,
    name: m.name,
    seed: m.seed,
    combine: n === undefined ? { mode, repeat } : { mode, n, repeat },
    ...(m.target ? { target: headerTarget(m) } : {}),
    versions: { key: KEY_VERSION, render: RENDER_VERSION },
    samples,
    ...count,
    ...(offline ? { offline: true as const } : {}),
    steps: Object.fromEntries(m.steps.map((s) => [s.id, { ...s.parts, def: s.defHash, kind: s.kind }])),
  };
}
