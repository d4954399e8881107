import type { Sample } from "../expand/sample.js";
import type { DedupeStep, GenerateStep, Manifest, ProviderKind, RunStep, Step } from "../manifest/types.js";
import { dataRenderProblem, forModule, Structured } from "../template/structured.js";
import { hash64 } from "../util/hash.js";
import { dropReason } from "./answer-drops.js";
import { nearDuplicates } from "./near-duplicates.js";
import { dedupeRecipe, stepRecipe } from "./recipe.js";
import { type ChatRequest, renderRequest, requestKey } from "./request.js";
import { baseScope, nonceFor } from "./scope.js";
import { applyMap, dedupeKey, filterReason } from "./transforms.js";

/** A model answer as the pipeline needs it, from the cache or fresh from a provider. */
export interface Answer {
  text: string;
  finishReason: string;
  usage?: { input: number; output: number };
  model?: string;
  fingerprint?: string;
  offline: boolean;
  /** The batch that answered it, when it came from the Batch API. */
  batch?: string;
  /** True when it came from the cache, false when it was requested in this run. */
  cached: boolean;
}

/** A request's own failure (its retries spent, its answer unusable): the sample fails, the build goes on. */
export class SampleFailure extends Error {
  override readonly name = "SampleFailure";
}

/**
 * How generate steps get their answers. The same walk serves `plan` (cache only: a miss returns
 * undefined), `--frozen` (likewise, and records what is missing) and `build` (a miss is requested).
 * A thrown SampleFailure fails the sample; any other error stops the build.
 */
export interface Resolver {
  answer(key: string, req: ChatRequest, sample: Sample, step: GenerateStep): Promise<Answer | undefined>;
}

export type StepStatus = "cached" | "ran" | "failed" | "computed";

export interface StepRecord {
  readonly id: string;
  readonly kind: Step["kind"];
  readonly status: StepStatus;
  /** Cache key (generate). */
  readonly key?: string;
  /** Hash of the step's output text (generate, map). */
  readonly out?: string;
  /** What the output is a function of (see recipe.ts); matches the lock's when nothing changed. */
  readonly recipe: string;
  readonly finishReason?: string;
  readonly model?: string;
  readonly fingerprint?: string;
  readonly usage?: { input: number; output: number };
  /** The batch whose answer this is (Batch API). */
  readonly batch?: string;
  /** The rendered request, kept for `show` and token estimates. */
  readonly request?: ChatRequest;
}

export type SampleStatus = "kept" | "dropped" | "failed" | "pending";

export interface SampleRun {
  readonly sample: Sample;
  /** Dimension values, built-ins and step outputs, by name: what templates read. */
  readonly scope: Record<string, unknown>;
  readonly steps: StepRecord[];
  status: SampleStatus;
  /** Index into the manifest's steps of the next step to run; a pending sample resumes here. */
  cursor: number;
  /** For dropped and failed samples: which step, and why. */
  stoppedBy?: { step: string; reason: string };
  /** Steps whose output was cut off by max_tokens (created on first use: most samples have none). */
  truncated?: Set<string>;
  /** `show`: the request a pending sample would send next. */
  pendingRequest?: ChatRequest;
  /**
   * The miss a cache scan stopped on, held for the pass that requests it (PipelineOptions.holdMiss)
   * so that its request is rendered and hashed once, not once per pass.
   */
  heldMiss?: { readonly cursor: number; readonly req: ChatRequest; readonly key: string };
}

export interface PipelineOptions {
  /** `--offline`: every generate step goes to the echo provider. */
  providerOverride?: ProviderKind;
  keepRequests?: boolean;
  /** Told of each request a sample stops on for want of an answer (plan's token estimate). */
  onMiss?: (run: SampleRun, req: ChatRequest, step: GenerateStep, key: string) => void;
  /** Keep a miss's request and key on the run (SampleRun.heldMiss): a requesting pass follows. */
  holdMiss?: boolean;
  /** Calls a run step's module for one sample (in a worker thread: execute/run-pool.ts). */
  runModule?: (step: RunStep, vars: Record<string, unknown>) => Promise<RunOutcome>;
}

/**
 * One call of a run module: its text, a drop, or a failure of the sample (it threw, returned
 * something else, timed out, called process.exit) with the reason; interrupted leaves the sample
 * pending, as a request cut off by Ctrl-C does.
 */
export type RunOutcome = { text: string } | { drop: string } | { failed: string } | { interrupted: true };

export function newRun(m: Manifest, sample: Sample): SampleRun {
  return { sample, scope: baseScope(m, sample), steps: [], status: "kept", cursor: 0 };
}

/** Indexes of the dataset-level steps: per-sample steps between them run sample by sample. */
export function barriers(steps: Step[]): number[] {
  return steps.flatMap((s, i) => (s.kind === "dedupe" ? [i] : []));
}

/**
 * Run one sample from its cursor up to (not including) step `end`, stopping at the first drop,
 * failure or miss. A miss leaves the sample pending with its cursor on the missing step, so the
 * same walk can be resumed with a resolver that requests what the cache lacks.
 */
export async function advance(m: Manifest, run: SampleRun, end: number, resolver: Resolver, opts: PipelineOptions = {}): Promise<void> {
  if (run.status === "pending") run.status = "kept";
  for (; run.cursor < end; run.cursor++) {
    if (run.status !== "kept") return;
    const step = m.steps[run.cursor]!;
    // A generate step's recipe is worked out only once its answer is known: a miss would throw it away.
    const recipeOf = () => stepRecipe(m, step, run.sample, (id) => run.steps.find((r) => r.id === id)?.out, opts.providerOverride === "echo");
    switch (step.kind) {
      case "generate": {
        let req: ChatRequest;
        let key: string;
        const held = run.heldMiss;
        run.heldMiss = undefined;
        if (held && held.cursor === run.cursor) ({ req, key } = held);
        else {
          try {
            req = renderRequest(step, run.scope, opts.providerOverride, { nonce: nonceFor(m, run.sample, step.id) });
            const n = run.sample.attempts?.[step.id];
            if (n) req.attempt = n;
          } catch (err) {
            const why = dataRenderProblem(err, readsOfStep(step), run.scope);
            if (!why) throw err;
            // Dropped, not failed: the same answers would fail the same way at every build.
            run.steps.push({ id: step.id, kind: step.kind, status: "computed", recipe: recipeOf() });
            run.status = "dropped";
            run.stoppedBy = { step: step.id, reason: why };
            return;
          }
          key = requestKey(req, step);
        }
        let answer: Answer | undefined;
        try {
          answer = await resolver.answer(key, req, run.sample, step);
        } catch (err) {
          // Only a request's own failure fails its sample; anything else (a write error, a bug)
          // stops the build rather than let it go on paying while samples "fail".
          if (!(err instanceof SampleFailure)) throw err;
          run.steps.push({ id: step.id, kind: step.kind, key, recipe: recipeOf(), request: opts.keepRequests ? req : undefined, status: "failed" });
          run.status = "failed";
          run.stoppedBy = { step: step.id, reason: (err as Error).message };
          return;
        }
        if (!answer) {
          run.status = "pending";
          run.pendingRequest = opts.keepRequests ? req : undefined;
          if (opts.holdMiss) run.heldMiss = { cursor: run.cursor, req, key };
          opts.onMiss?.(run, req, step, key);
          return;
        }
        run.scope[step.id] = step.parseAnswer ? answerValue(answer.text) : answer.text;
        if (answer.finishReason === "length") (run.truncated ??= new Set()).add(step.id);
        const out = hash64(answer.text);
        // A refusal, a content filter's stop or an empty answer: recorded with the step (its key
        // and answer stay in the lock), and the sample dropped by this step with that reason.
        const unusable = dropReason(answer);
        if (unusable) {
          run.status = "dropped";
          run.stoppedBy = { step: step.id, reason: unusable };
        }
        run.steps.push({
          id: step.id,
          kind: step.kind,
          key,
          recipe: recipeOf(),
          request: opts.keepRequests ? req : undefined,
          status: answer.cached ? "cached" : "ran",
          out,
          finishReason: answer.finishReason,
          model: answer.model,
          fingerprint: answer.fingerprint,
          usage: answer.usage,
          ...(answer.batch ? { batch: answer.batch } : {}),
        });
        break;
      }
      case "map": {
        const mapped = applyMap(step, String(run.scope[step.field] ?? ""));
        if ("drop" in mapped) {
          run.steps.push({ id: step.id, kind: step.kind, status: "computed", recipe: recipeOf() });
          run.status = "dropped";
          run.stoppedBy = { step: step.id, reason: mapped.drop };
          break;
        }
        run.scope[step.id] = mapped.text;
        if (run.truncated?.has(step.field)) run.truncated.add(step.id);
        run.steps.push({ id: step.id, kind: step.kind, status: "computed", out: hash64(mapped.text), recipe: recipeOf() });
        break;
      }
      case "filter": {
        const reason = filterReason(step, run.scope, run.truncated);
        run.steps.push({ id: step.id, kind: step.kind, status: "computed", recipe: recipeOf() });
        if (reason) {
          run.status = "dropped";
          run.stoppedBy = { step: step.id, reason };
        }
        break;
      }
      case "run": {
        if (!opts.runModule) throw new Error("advance() needs a runModule for run steps (execute/walk.ts gives one)");
        // Built as `{ ...scope, nonce }` was, key order too: a module may serialise what it is given.
        const vars: Record<string, unknown> = {};
        for (const k of Object.keys(run.scope)) vars[k] = forModule(run.scope[k]);
        vars.nonce = nonceFor(m, run.sample, step.id);
        const outcome = await opts.runModule(step, vars);
        if ("interrupted" in outcome) {
          run.status = "pending";
          return;
        }
        if ("failed" in outcome) {
          run.steps.push({ id: step.id, kind: step.kind, status: "failed", recipe: recipeOf() });
          run.status = "failed";
          run.stoppedBy = { step: step.id, reason: outcome.failed };
          return;
        }
        run.steps.push({ id: step.id, kind: step.kind, status: "computed", recipe: recipeOf(), ...("text" in outcome ? { out: hash64(outcome.text) } : {}) });
        if ("drop" in outcome) {
          run.status = "dropped";
          run.stoppedBy = { step: step.id, reason: outcome.drop };
          break;
        }
        run.scope[step.id] = outcome.text;
        break;
      }
      case "dedupe":
        throw new Error("dedupe is a dataset-level step; advance() must stop before it");
    }
  }
}

function readsOfStep(step: GenerateStep): string[] {
  return step.messages.flatMap((msg) => msg.template.reads);
}

/**
 * A structured answer with its fields readable. Answers are checked against the schema before
 * they are stored, so one that is not JSON (an offline echo of a schema-less provider) stays text.
 */
function answerValue(text: string): unknown {
  try {
    return new Structured(text, JSON.parse(text), "answer");
  } catch {
    return text;
  }
}

/**
 * Keep one sample per distinct (normalised) value: the one with the smallest id, so the choice
 * does not depend on order and stays put as the dataset grows. With `rank` (target:, whose
 * candidates come in waves) the earliest candidate wins instead, so a later wave can never
 * displace a row already chosen; runs that passed this step in an earlier wave are compared
 * against, not decided again.
 */
export function applyDedupe(step: DedupeStep, runs: SampleRun[], rank?: ReadonlyMap<SampleRun, number>): void {
  const fresh = (r: SampleRun) => !r.steps.some((s) => s.id === step.id);
  const passed = (r: SampleRun) => (fresh(r) ? r.status === "kept" : r.stoppedBy?.step !== step.id);
  const before = rank ? (a: SampleRun, b: SampleRun) => rank.get(a)! < rank.get(b)! : (a: SampleRun, b: SampleRun) => a.sample.id < b.sample.id;
  const live = runs.filter(passed);
  if (step.minhash) {
    applyNearDedupe(step, step.minhash, live, before, fresh);
    return;
  }
  const keyOf = (run: SampleRun) => dedupeKey(String(run.scope[step.field] ?? ""), step.ignoreCase, step.ignoreWhitespace);
  const keeper = new Map<string, SampleRun>();
  for (const run of live) {
    const k = keyOf(run);
    const prev = keeper.get(k);
    if (!prev || before(run, prev)) keeper.set(k, run);
  }
  for (const run of live) {
    if (!fresh(run)) continue;
    const kept = keeper.get(keyOf(run))!;
    run.steps.push({ id: step.id, kind: step.kind, status: "computed", recipe: dedupeRecipe(step) });
    if (kept !== run) {
      run.status = "dropped";
      run.stoppedBy = { step: step.id, reason: `${step.field} duplicates sample ${kept.sample.id}` };
    }
  }
}

/** minhash: in sample-id (or candidate) order, a sample similar enough to an earlier kept one is dropped. */
function applyNearDedupe(
  step: DedupeStep,
  opts: { threshold: number; shingle: number },
  runs: SampleRun[],
  before: (a: SampleRun, b: SampleRun) => boolean,
  fresh: (r: SampleRun) => boolean,
): void {
  const live = runs.sort((a, b) => (before(a, b) ? -1 : 1));
  const dup = nearDuplicates(
    live.map((r) => ({ id: r.sample.id, text: dedupeKey(String(r.scope[step.field] ?? ""), step.ignoreCase, true) })),
    opts.threshold,
    opts.shingle,
  );
  for (const run of live) {
    if (!fresh(run)) continue;
    run.steps.push({ id: step.id, kind: step.kind, status: "computed", recipe: dedupeRecipe(step) });
    const of = dup.get(run.sample.id);
    if (of) {
      run.status = "dropped";
      run.stoppedBy = { step: step.id, reason: `${step.field} is a near-duplicate of sample ${of}` };
    }
  }
}

export async function forEachConcurrent<T>(items: readonly T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  let failed = false;
  const worker = async () => {
    // After one worker throws, the others stop taking items: nothing new starts once the call has failed.
    while (next < items.length && !failed) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(width, items.length)) }, worker));
}
