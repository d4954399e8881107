import type { Lock, LockSample } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import type { SampleRun } from "./pipeline.js";

/**
 * Why a sample needs requests, in the terms a person edits: which value changed, which step's
 * definition changed, which upstream output it reads changed, or that its answer left the cache.
 */
export function explainStale(m: Manifest, run: SampleRun, lock: Lock | undefined, index: LockIndex | undefined): string[] {
  const step = m.steps[run.cursor]!;
  const prev = index?.byId.get(run.sample.id);
  if (!lock) return ["no dataset.lock yet: first build"];
  if (!prev) return [newSampleReason(m, run, index!)];
  if (prev.status === "failed" && prev.reason?.step === step.id) return [`step '${step.id}' failed last build: ${prev.reason.why}`];
  const was = prev.steps[step.id];
  if (!was?.key)
    return [
      `step '${step.id}' was not built for this sample before${prev.status !== "kept" ? ` (it was ${prev.status}${prev.reason ? `: ${prev.reason.why}` : ""})` : ""}`,
    ];
  if (lock.header.steps?.[step.id] !== step.defHash) return [`step '${step.id}' changed (its template, model or parameters)`];
  const upstream = m.steps
    .slice(0, run.cursor)
    .filter((s) => prev.steps[s.id]?.out !== undefined && run.steps.find((r) => r.id === s.id)?.out !== prev.steps[s.id]!.out);
  if (upstream.length) return upstream.map((s) => `reads '${s.id}', whose output changed`);
  return [`the answer for step '${step.id}' is not in the cache (deleted, or built on another machine)`];
}

export interface LockIndex {
  byId: Map<string, LockSample>;
  /** "values without dimension d" → samples, to name the one value a new sample changed. */
  byOthers: Map<string, LockSample[]>;
}

export function indexLock(m: Manifest, lock: Lock): LockIndex {
  const byId = new Map(lock.samples.map((s) => [s.id, s]));
  const byOthers = new Map<string, LockSample[]>();
  for (const s of lock.samples) {
    for (const d of m.dimensions) {
      const k = othersKey(m, d.name, s.values, s.repeat);
      const list = byOthers.get(k);
      if (list) list.push(s);
      else byOthers.set(k, [s]);
    }
  }
  return { byId, byOthers };
}

function othersKey(m: Manifest, skip: string, values: Record<string, string>, repeat: number): string {
  return JSON.stringify([skip, repeat, ...m.dimensions.filter((d) => d.name !== skip).map((d) => values[d.name] ?? null)]);
}

function newSampleReason(m: Manifest, run: SampleRun, index: LockIndex): string {
  const values: Record<string, string> = {};
  for (const [i, d] of m.dimensions.entries()) values[d.name] = run.sample.values[i]!.key;
  for (const d of m.dimensions) {
    const neighbours = index.byOthers.get(othersKey(m, d.name, values, run.sample.repeat)) ?? [];
    if (neighbours.length === 0) continue;
    // A neighbour whose value is gone from the manifest is this sample before the edit.
    const current = new Set(d.values.map((v) => v.key));
    const replaced = neighbours.find((n) => n.values[d.name] !== undefined && !current.has(n.values[d.name]!));
    if (replaced) return `${d.name} changed: '${replaced.values[d.name]}' → '${values[d.name]}'`;
    return `new sample: ${d.name} '${values[d.name]}' was added`;
  }
  return "new sample (no sample with these values is in the lock)";
}
