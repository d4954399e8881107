import { partsChanged } from "../lock/diff.js";
import type { Lock, LockSample } from "../lock/lockfile.js";
import type { Manifest, Step } from "../manifest/types.js";
import { RENDER_VERSION } from "../template/engine.js";
import { attemptOf } from "./attempts.js";
import type { SampleRun } from "./pipeline.js";
import { keyedApart, stepRecipe } from "./recipe.js";
import { KEY_VERSION } from "./request.js";

/**
 * Why a sample will change, in the terms a person edits: which value changed, which part of
 * which step's definition (template, model, endpoint, a parameter, a filter's option), the seed,
 * `combine`, an upstream output, or that its answer left the cache. Everything is compared with
 * what the lock's header and the sample's lock entry recorded.
 */
export class Explainer {
  private readonly byId: Map<string, LockSample>;
  /** "values without dimension d" → lock samples: finds the one value a new sample changed. */
  private readonly byOthers = new Map<string, LockSample[]>();
  /** Per dimension, the value keys the manifest has now (built once: a dimension may hold a million). */
  private readonly current: Map<string, Set<string>>;
  /** Per dimension, the value keys the lock has. */
  private readonly locked = new Map<string, Set<string>>();

  constructor(
    private readonly m: Manifest,
    private readonly lock: Lock | undefined,
  ) {
    this.byId = new Map(lock?.samples.map((s) => [s.id, s]) ?? []);
    this.current = new Map(m.dimensions.map((d) => [d.name, new Set(d.values.map((v) => v.key))]));
    for (const d of m.dimensions) this.locked.set(d.name, new Set());
    for (const s of lock?.samples ?? []) {
      for (const d of m.dimensions) {
        this.locked.get(d.name)!.add(s.values[d.name]!);
        const k = this.othersKey(d.name, s.values, s.repeat);
        const list = this.byOthers.get(k);
        if (list) list.push(s);
        else this.byOthers.set(k, [s]);
      }
    }
  }

  /** A sample that needs a request at the step it stopped on. */
  stale(run: SampleRun): string[] {
    const step = this.m.steps[run.cursor]!;
    if (!this.lock) return ["no dataset.lock yet: first build"];
    const prev = this.byId.get(run.sample.id);
    if (!prev) return [this.newSample(run)];
    if (prev.status === "failed" && prev.reason?.step === step.id) return [`step '${step.id}' failed last build: ${prev.reason.why}`];
    const was = prev.steps[step.id];
    if (!was?.key)
      return [
        `step '${step.id}' was not built for this sample before${prev.status !== "kept" ? ` (it was ${prev.status}${prev.reason ? `: ${prev.reason.why}` : ""})` : ""}`,
      ];
    const why = this.stepChanged(step, run, prev);
    return why.length ? why : [`the answer for step '${step.id}' is not in the cache (deleted, or built on another machine: \`synthbuild pull\`)`];
  }

  /** A sample that needs no request but whose rows may change: the first step whose recipe moved. */
  changed(run: SampleRun): { step: string; reasons: string[] } | undefined {
    const prev = this.byId.get(run.sample.id);
    if (!prev) return this.lock ? { step: this.m.steps[0]?.id ?? "", reasons: [this.newSample(run)] } : undefined;
    for (const rec of run.steps) {
      const was = prev.steps[rec.id];
      if (was && was.r === rec.recipe) continue;
      const step = this.m.steps.find((s) => s.id === rec.id)!;
      const why = was ? this.stepChanged(step, run, prev) : [`step '${rec.id}' was not reached before (the sample was ${prev.status})`];
      return { step: rec.id, reasons: why.length ? why : [`what step '${rec.id}' reads changed`] };
    }
    if (prev.status !== run.status) return { step: run.stoppedBy?.step ?? "", reasons: [`it was ${prev.status}, now ${run.status}`] };
    return undefined;
  }

  /** Samples the lock has and the manifest no longer makes, and why. */
  removed(present: Set<string>): { id: string; values: Record<string, string>; reasons: string[] }[] {
    const out: { id: string; values: Record<string, string>; reasons: string[] }[] = [];
    for (const s of this.lock?.samples ?? []) if (!present.has(s.id)) out.push({ id: s.id, values: s.values, reasons: [this.removedWhy(s)] });
    return out;
  }

  private removedWhy(s: LockSample): string {
    for (const d of this.m.dimensions) {
      const v = s.values[d.name];
      if (v !== undefined && !this.current.get(d.name)!.has(v)) return `${d.name} '${v}' was removed`;
    }
    const h = this.lock!.header;
    if (Object.keys(s.values).some((k) => !this.current.has(k))) return "a dimension was removed";
    if (s.repeat >= this.m.combine.repeat) return `combine.repeat lowered: ${h.combine.repeat} → ${this.m.combine.repeat}`;
    if (this.m.combine.mode === "sample" && h.combine.n !== undefined && this.m.combine.n !== undefined && this.m.combine.n < h.combine.n)
      return `combine.n lowered: ${h.combine.n} → ${this.m.combine.n}`;
    if (h.seed !== this.m.seed && this.m.combine.mode === "sample") return `seed changed: ${h.seed} → ${this.m.seed} (combine: sample draws other samples)`;
    return "no longer combined (combine mode, exclude or a conditional dimension changed)";
  }

  private newSample(run: SampleRun): string {
    const m = this.m;
    const h = this.lock!.header;
    const values: Record<string, string> = {};
    for (const [i, d] of m.dimensions.entries()) values[d.name] = run.sample.values[i]!.key;
    for (const d of m.dimensions) {
      const neighbours = this.byOthers.get(this.othersKey(d.name, values, run.sample.repeat)) ?? [];
      if (neighbours.length === 0 || this.locked.get(d.name)!.has(values[d.name]!)) continue;
      // A neighbour whose value is gone from the manifest is this sample before the edit.
      const current = this.current.get(d.name)!;
      const replaced = neighbours.find((n) => n.values[d.name] !== undefined && !current.has(n.values[d.name]!));
      if (replaced) return `${d.name} changed: '${replaced.values[d.name]}' → '${values[d.name]}'`;
    }
    if (Object.keys(this.lock!.samples[0]?.values ?? {}).length !== m.dimensions.length) return "new sample: the dimensions changed";
    // A sampled lock holds only the values that were drawn: a value it lacks may not be new.
    if (m.combine.mode === "sample" && h.combine.mode === "sample") {
      if (h.seed !== m.seed) return `new sample: seed changed: ${h.seed} → ${m.seed} (combine: sample draws other samples)`;
      if ((m.combine.n ?? 0) > (h.combine.n ?? 0)) return `new sample: combine.n raised: ${h.combine.n} → ${m.combine.n}`;
    }
    if (run.sample.repeat >= h.combine.repeat) return `new sample: combine.repeat raised: ${h.combine.repeat} → ${m.combine.repeat}`;
    for (const d of m.dimensions) if (!this.locked.get(d.name)!.has(values[d.name]!)) return `new sample: ${d.name} '${values[d.name]}' was added`;
    if (h.combine.mode !== m.combine.mode) return `new sample: combine.mode changed: ${h.combine.mode} → ${m.combine.mode}`;
    return "new sample: its values were not combined before (exclude or a conditional dimension changed)";
  }

  /** What differs for this step of this sample from what the lock recorded; empty if nothing can be named. */
  private stepChanged(step: Step, run: SampleRun, prev: LockSample): string[] {
    const h = this.lock!.header;
    if (h.versions.key !== KEY_VERSION)
      return [`synthbuild's cache keys changed (key version ${h.versions.key} → ${KEY_VERSION}; \`synthbuild migrate\` keeps answers paid for)`];
    if (h.versions.render !== RENDER_VERSION) return [`synthbuild's template rendering changed (version ${h.versions.render} → ${RENDER_VERSION})`];
    const def = h.steps[step.id];
    if (!def) return [`step '${step.id}' is new`];
    if (def.def !== step.defHash) return [`step '${step.id}' changed: ${partsChanged(def, step.parts).join(", ")}`];
    const rerolled = this.rerolled(step, run, prev);
    if (rerolled) return [rerolled];
    const reasons: string[] = [];
    if (h.seed !== this.m.seed && step.kind !== "dedupe") reasons.push(`seed changed: ${h.seed} → ${this.m.seed}`);
    const upstream = this.m.steps
      .slice(0, step.index)
      .filter((s) => prev.steps[s.id]?.out !== undefined && run.steps.find((r) => r.id === s.id)?.out !== prev.steps[s.id]!.out);
    for (const s of upstream) reasons.push(`reads '${s.id}', whose output changed`);
    if (!reasons.length) {
      const edited = this.m.dimensions.find((d, i) => keyedApart(d) && run.sample.values[i]!.key === prev.values[d.name]);
      if (edited?.kind === "glob") reasons.push("a file it reads changed");
      else if (edited) reasons.push(`row '${prev.values[edited.name]}' of ${edited.file} changed`);
    }
    return reasons;
  }

  /**
   * `synthbuild reroll` bumped this step's attempt and nothing else moved: the lock's recipe is
   * what this step's recipe would be one attempt earlier.
   */
  private rerolled(step: Step, run: SampleRun, prev: LockSample): string | undefined {
    const n = attemptOf(run.sample, step.id);
    if (n === 0 || step.kind !== "generate") return undefined;
    const earlier = { ...run.sample, attempts: { ...run.sample.attempts, [step.id]: n - 1 } };
    const outs = (id: string) => run.steps.find((r) => r.id === id)?.out;
    const was = stepRecipe(this.m, step, earlier, outs, this.lock?.header.offline === true);
    return was === prev.steps[step.id]?.r ? `rerolled (attempt ${n})` : undefined;
  }

  private othersKey(skip: string, values: Record<string, string>, repeat: number): string {
    return JSON.stringify([skip, repeat, ...this.m.dimensions.filter((d) => d.name !== skip).map((d) => values[d.name] ?? null)]);
  }
}
