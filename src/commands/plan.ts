import { CacheResolver } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import { pairCoverage } from "../expand/coverage.js";
import type { Sample } from "../expand/sample.js";
import { decide } from "../freshness/decide.js";
import { type Lock, readLock } from "../lock/lockfile.js";
import type { GenerateStep, Manifest } from "../manifest/types.js";
import { withAttempts } from "../plan/attempts.js";
import { batchedSteps, requestsByStep } from "../plan/batch-choice.js";
import { Explainer } from "../plan/explain.js";
import { newRun, type SampleRun } from "../plan/pipeline.js";
import { costOf, loadPrices, needsPriceBook, priceOf } from "../plan/prices.js";
import type { ChatRequest } from "../plan/request.js";
import { loadTokenCounter, requestTokens } from "../plan/tokens.js";
import { KeySet } from "../util/key-set.js";
import { recordedAttempts } from "./attempts.js";
import { type CommonOptions, openProject } from "./context.js";

export interface PlanOptions extends CommonOptions {
  explain?: boolean;
  offline?: boolean;
  limit?: number;
}

export interface StepPlan {
  id: string;
  kind: string;
  total: number;
  cached: number;
  to_run: number;
  /** A build would send this step's requests as a batch (model.mode), priced at the batch price. */
  batch?: true;
}

export interface PlanResult {
  samples: number;
  requests: number;
  steps: StepPlan[];
  estimate: { input_tokens: number; output_tokens: number; cost_usd: number | null };
  /** combine: pairwise: per pair of dimensions, the value pairs the samples hold of those allowed. */
  pairwise?: { a: string; b: string; covered: number; total: number }[];
  /** With `target:`: the rows wanted, and the candidates (samples) this plan covers and why that many; a build adds more if fewer rows survive. */
  target?: { rows: number; max_candidates: number; candidates: number; why: string };
  /** With explain: each sample that needs requests, and why. */
  stale?: { id: string; values: Record<string, string>; step: string; reasons: string[] }[];
  /** With explain: samples that need no request but whose rows or fate will change (a filter edited, an output's input...), and why. */
  changed?: { id: string; values: Record<string, string>; step: string; reasons: string[] }[];
  /** With explain: samples in the lock that the manifest no longer makes, and why. */
  removed?: { id: string; values: Record<string, string>; reasons: string[] }[];
}

/** What a build would do, from the manifest, the cache and the lock alone: no request is made. */
export async function plan(opts: PlanOptions = {}): Promise<PlanResult> {
  const project = await openProject(opts);
  const m = project.manifest;
  const offline = opts.offline ?? false;
  const target = m.target &&
    project.candidates && {
      target: { rows: m.target.rows, max_candidates: m.target.maxCandidates, candidates: project.candidates.count, why: project.candidates.why },
    };
  const existing = await readLock(project.paths.lock).catch((err: Error) => {
    opts.events?.warn?.(`${err.message}; planning as if there were none`);
    return undefined;
  });
  // As build reads them: a rerolled sample is planned at the attempt the lock records.
  const samples = withAttempts(m, project.samples, await recordedAttempts(project.paths.lock, existing?.lock));
  // The decision a build would take, taken the same way.
  const verdict = await decide(m, samples, project.cache, existing, { offline });
  if (verdict?.upToDate) {
    const r = verdict.current.reached;
    const steps = m.steps.map((s, i) => ({ id: s.id, kind: s.kind, total: r[i]!, cached: r[i]!, to_run: 0 }));
    const empty = opts.explain ? { stale: [], changed: [], removed: [] } : {};
    return {
      samples: samples.length,
      requests: 0,
      steps,
      estimate: { input_tokens: 0, output_tokens: 0, cost_usd: 0 },
      ...pairwiseOf(m, samples),
      ...target,
      ...empty,
    };
  }
  const runs = samples.map((s) => newRun(m, s));
  if (runs.length >= 10_000) project.cache.snapshot();
  const count = await loadTokenCounter();
  if (needsPriceBook(m.steps, offline)) await loadPrices();
  const missed = new InputTally(count);
  const misses = new Map<SampleRun, [string, ChatRequest, string][]>();
  await walk(m, runs, {
    cached: new CacheResolver(project.cache),
    width: 256,
    // With --limit, which misses count is known only once every sample is scanned.
    onMiss: (run, req, step, key) =>
      opts.limit === undefined ? missed.add(step.id, req, key) : misses.set(run, [...(misses.get(run) ?? []), [step.id, req, key]]),
    providerOverride: offline ? "echo" : undefined,
  });
  // What `build --limit N` would request: the first N samples that need a request, not the first
  // N of the manifest (after a value is added those are cached, and the trial would try nothing).
  let free = opts.limit ?? Infinity;
  const counted = runs.filter((r) => r.status !== "pending" || free-- > 0);
  for (const r of counted) for (const [step, req, key] of misses.get(r) ?? []) missed.add(step, req, key);

  // The choice a build makes once its scan is done, from the same counts (plan/batch-choice.ts).
  const batched = batchedSteps(
    m.steps,
    requestsByStep(
      m.steps,
      counted.filter((r) => r.status === "pending").map((r) => r.cursor),
    ),
    offline,
  );
  const steps = stepPlans(m, counted, existing?.lock).map((p) => (batched.has(p.id) && p.to_run ? { ...p, batch: true as const } : p));
  // Samples that send the very same request share one answer: count requests, not samples.
  const downstream = counted.reduce((n, r) => n + (r.status === "pending" ? m.steps.slice(r.cursor + 1).filter((s) => s.kind === "generate").length : 0), 0);
  const requests = missed.distinct() + downstream;
  const result: PlanResult = {
    samples: runs.length,
    requests,
    steps,
    estimate: estimate(m, counted, missed, count, offline, batched),
    ...pairwiseOf(m, samples),
    ...target,
  };
  if (opts.explain) {
    const explainer = new Explainer(m, existing?.lock);
    const valuesOf = (r: SampleRun) => Object.fromEntries(m.dimensions.map((d, i) => [d.name, r.sample.values[i]!.key]));
    result.stale = [];
    result.changed = [];
    for (const r of runs) {
      if (r.status === "pending") result.stale.push({ id: r.sample.id, values: valuesOf(r), step: m.steps[r.cursor]!.id, reasons: explainer.stale(r) });
      else {
        const c = explainer.changed(r);
        if (c) result.changed.push({ id: r.sample.id, values: valuesOf(r), ...c });
      }
    }
    result.removed = explainer.removed(new Set(runs.map((r) => r.sample.id)));
  }
  return result;
}

function pairwiseOf(m: Manifest, samples: Sample[]): Pick<PlanResult, "pairwise"> {
  if (m.combine.mode !== "pairwise") return {};
  return { pairwise: pairCoverage(m, samples).map(({ a, b, covered, total }) => ({ a, b, covered, total })) };
}

/**
 * Per step: how many samples reach it, and of those how many are settled (an answer in the cache;
 * a local step whose recipe the lock already holds) or to run (a request; a local step, such as
 * a run module whose imports were edited, that computes something the lock does not have).
 */
function stepPlans(m: Manifest, runs: SampleRun[], lock: Lock | undefined): StepPlan[] {
  const plans = m.steps.map((s) => ({ id: s.id, kind: s.kind, total: 0, cached: 0, to_run: 0 }));
  const at = new Map(plans.map((p, i) => [p.id, i]));
  const locked = new Map(lock?.samples.map((s) => [s.id, s]) ?? []);
  for (const run of runs) {
    const was = locked.get(run.sample.id);
    for (const rec of run.steps) {
      const p = plans[at.get(rec.id)!]!;
      p.total++;
      if (rec.status === "cached" || (rec.status === "computed" && was?.steps[rec.id]?.r === rec.recipe)) p.cached++;
      else if (rec.status === "computed") p.to_run++;
    }
    if (run.status === "pending") {
      for (let i = run.cursor; i < plans.length; i++) {
        plans[i]!.total++;
        plans[i]!.to_run++;
      }
    }
  }
  return plans;
}

/**
 * Tokens and cost of the requests a build would make. A pending request's input is counted
 * exactly; requests downstream of it (whose input is an answer not yet written) are estimated from
 * their template plus the expected length of the answers they read. Expected answer length: the
 * mean of this step's cached answers, else max_tokens, else 500.
 */
function estimate(
  m: Manifest,
  runs: SampleRun[],
  missed: InputTally,
  count: (text: string) => number,
  offline: boolean,
  batched: ReadonlySet<string>,
): PlanResult["estimate"] {
  const gen = m.steps.filter((s): s is GenerateStep => s.kind === "generate");
  const expectedOut = new Map<string, number>();
  for (const s of gen) {
    let sum = 0;
    let n = 0;
    for (const r of runs) {
      const rec = r.steps.find((x) => x.id === s.id);
      if (rec?.usage) {
        sum += rec.usage.output;
        n++;
      }
    }
    expectedOut.set(s.id, n ? sum / n : Number(s.model.params.max_tokens ?? s.model.params.max_completion_tokens ?? 500));
  }
  const templateIn = new Map(gen.map((s) => [s.id, s.messages.reduce((n, msg) => n + count(msg.template.source) + 4, 3) + answerTokensRead(s, expectedOut)]));
  let input = 0;
  let output = 0;
  let cost: number | null = 0;
  const add = (s: GenerateStep, i: number, o: number) => {
    input += i;
    output += o;
    const c = costOf(priceOf(s.model, offline, batched.has(s.id)), i, o);
    cost = c === null || cost === null ? null : cost + c;
  };
  for (const r of runs) {
    if (r.status !== "pending") continue;
    for (let i = r.cursor + 1; i < m.steps.length; i++) {
      const s = m.steps[i]!;
      if (s.kind === "generate") add(s, templateIn.get(s.id)!, Math.round(expectedOut.get(s.id)!));
    }
  }
  for (const s of gen) {
    const n = missed.requests(s.id);
    if (n) add(s, missed.tokens(s.id), Math.round(expectedOut.get(s.id)! * n));
  }
  return { input_tokens: input, output_tokens: output, cost_usd: cost === null ? null : Math.round((cost as number) * 1e6) / 1e6 };
}

function answerTokensRead(s: GenerateStep, expectedOut: Map<string, number>): number {
  let n = 0;
  for (const msg of s.messages) for (const name of msg.template.reads) n += expectedOut.get(name) ?? 0;
  return Math.round(n);
}

/**
 * Input tokens of the requests a build would send. The first few thousand of each step are
 * counted exactly; the rest by their length at the tokens-per-character those showed, so
 * planning a million samples does not tokenize a million prompts.
 */
class InputTally {
  private static readonly EXACT = 2000;
  private readonly byStep = new Map<string, { n: number; chars: number; exactChars: number; exactTokens: number }>();
  private readonly keys = new KeySet();

  constructor(private readonly count: (text: string) => number) {}

  add(step: string, req: ChatRequest, key: string): void {
    if (!this.keys.add(key)) return;
    let t = this.byStep.get(step);
    if (!t) this.byStep.set(step, (t = { n: 0, chars: 0, exactChars: 0, exactTokens: 0 }));
    const chars = req.messages.reduce((n, msg) => n + msg.content.length, 0);
    t.n++;
    t.chars += chars;
    if (t.n <= InputTally.EXACT) {
      t.exactChars += chars;
      t.exactTokens += requestTokens(this.count, req);
    }
  }

  /** Distinct requests seen. */
  distinct(): number {
    return this.keys.size;
  }

  requests(step: string): number {
    return this.byStep.get(step)?.n ?? 0;
  }

  tokens(step: string): number {
    const t = this.byStep.get(step);
    if (!t) return 0;
    return Math.round(t.exactTokens + (t.chars - t.exactChars) * (t.exactChars ? t.exactTokens / t.exactChars : 0.25));
  }
}
