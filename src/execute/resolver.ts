import { setMaxListeners } from "node:events";
import { CACHE_FORMAT, type Cache, type CacheEntry, CacheWriteError } from "../cache/store.js";
import { SynthbuildError } from "../errors.js";
import type { Sample } from "../expand/sample.js";
import type { GenerateStep } from "../manifest/types.js";
import { dropReason, isRetryableEmpty } from "../plan/answer-drops.js";
import { type Answer, type Resolver, SampleFailure } from "../plan/pipeline.js";
import type { ChatRequest } from "../plan/request.js";
import { requestTokens } from "../plan/tokens.js";
import { EndpointRefused, NoResponse, type ProviderAnswer, RequestError } from "../providers/types.js";
import { displayUrl } from "../util/redact.js";
import { endpointError } from "./endpoint-errors.js";
import { validateJsonAnswer } from "./json-answer.js";
import type { ProviderPool } from "./providers.js";
import { type Replica, ReplicaOut, type ReplicaSet, replicaFailure } from "./replicas.js";
import { RetriesExhausted } from "./scheduler.js";
import { TimeBudget } from "./time-budget.js";

/** With `on_empty: retry`, an empty answer in the cache is no answer: it is requested again. */
function usable(e: CacheEntry, step?: GenerateStep): boolean {
  return !(step?.retryEmpty && isRetryableEmpty({ text: e.response.text, finishReason: e.response.finish_reason }));
}

function entryOf(key: string, req: ChatRequest, answer: ProviderAnswer, how: { offline: boolean; started: number; project?: string }): CacheEntry {
  return {
    format: CACHE_FORMAT,
    key,
    request: req,
    response: {
      text: answer.text,
      finish_reason: answer.finishReason,
      usage: answer.usage ? { input_tokens: answer.usage.input, output_tokens: answer.usage.output } : null,
      model: answer.model ?? null,
      system_fingerprint: answer.fingerprint ?? null,
      request_id: answer.requestId ?? null,
    },
    offline: how.offline,
    // Undefined fields are left out of the stored JSON (and no object is spread per answer).
    batch: answer.batch,
    created_at: new Date().toISOString(),
    duration_ms: Date.now() - how.started,
    project: how.project,
  };
}

export function answerFromEntry(e: CacheEntry, cached: boolean): Answer {
  const u = e.response.usage;
  return {
    text: e.response.text,
    finishReason: e.response.finish_reason,
    usage: u ? { input: u.input_tokens, output: u.output_tokens } : undefined,
    model: e.response.model ?? undefined,
    fingerprint: e.response.system_fingerprint ?? undefined,
    offline: e.offline,
    ...(e.batch ? { batch: e.batch } : {}),
    cached,
  };
}

/** Answers from the cache only; a miss is undefined. What `plan`, `--frozen` and `show` use. */
export class CacheResolver implements Resolver {
  constructor(
    private readonly cache: Cache,
    /** false: leave corrupt entries in place (verify only looks). */
    private readonly evict = true,
  ) {}

  async answer(key: string, _req?: ChatRequest, _sample?: Sample, step?: GenerateStep): Promise<Answer | undefined> {
    const e = await this.cache.get(key, { evict: this.evict });
    return e && usable(e, step) ? answerFromEntry(e, true) : undefined;
  }
}

export interface RemoteHooks {
  /** Fetch the key into the local cache if the remote has a sound copy; true if it now is local. */
  fetch(key: string): Promise<boolean>;
  /** A new answer was stored locally: upload it (in the background). */
  stored(key: string): void;
}

export interface RequestEvents {
  /** A request is about to be sent (after the budget check). */
  onStart?(step: GenerateStep): void;
  /** What onPaid needs loaded first, if it is not yet (the price book): awaited before it when given. */
  beforePaid?(): Promise<void> | undefined;
  /** The endpoint answered an attempt: paid for, whether or not the answer is then kept. */
  onPaid?(step: GenerateStep, req: ChatRequest, answer: ProviderAnswer, offline: boolean): void;
  /** An attempt ended without an answer (an error or a refusal). */
  onUnanswered?(step: GenerateStep, req: ChatRequest): void;
  onAnswer?(step: GenerateStep, req: ChatRequest, answer: ProviderAnswer, offline: boolean): void;
  onFailure?(sample: Sample, step: GenerateStep, req: ChatRequest, message: string): void;
  /** Something about a replica worth telling: taken out, or answering again. */
  onWarn?(message: string): void;
}

/**
 * Cache first; a miss goes through the step's scheduler to its provider and is stored the moment
 * it arrives. Identical requests within one build are sent once.
 *
 * An answer that concerns the whole endpoint (EndpointRefused, or the breaker giving up on an
 * endpoint that does not answer) stops the build: no request is started after it, the requests
 * already sent are waited for and their answers stored, and then every request of the build
 * rejects with the one EndpointError, which the walk and the build pass on without writing
 * dist/ or the lock.
 */
export class BuildResolver implements Resolver {
  /** A remote cache: looked up on a local miss before any request; told of each answer stored. */
  remote?: RemoteHooks;
  private readonly inflight = new Map<string, Promise<Answer | undefined>>();
  /** Requests on the wire (sent, answer not yet stored): what a stop waits for. */
  private readonly sent = new Set<Promise<void>>();
  private stopped?: SynthbuildError;
  /** Aborted to abandon the requests on the wire when the endpoint is not answering anyway. */
  private readonly abandon = new AbortController();
  private readonly requestSignal: AbortSignal;

  constructor(
    private readonly cache: Cache,
    private readonly pool: ProviderPool,
    private readonly signal: AbortSignal,
    private readonly events: RequestEvents = {},
    /**
     * Return false to leave a request unsent (--limit, the --max-cost budget); the sample stays
     * pending. Asked again before each retry (a retry is paid for too).
     */
    private readonly mayStart: (step: GenerateStep, req: ChatRequest, sample: Sample, batch?: boolean) => boolean = () => true,
    /** A tokenizer, when some step has a tpm limit to pace. */
    private readonly countTokens?: (text: string) => number,
  ) {
    this.requestSignal = AbortSignal.any([signal, this.abandon.signal]);
    setMaxListeners(0, this.requestSignal);
  }

  private estimate(req: ChatRequest): number {
    return estimateTokens(req, this.countTokens);
  }

  async answer(key: string, req: ChatRequest, sample: Sample, step: GenerateStep): Promise<Answer | undefined> {
    const hit = await this.lookup(key, step);
    if (hit) return hit;
    if (this.signal.aborted) return undefined;
    if (this.stopped) return this.whenStopped();
    let p = this.inflight.get(key);
    if (!p) {
      p = this.request(key, req, sample, step);
      this.inflight.set(key, p);
      void p.then(
        () => this.inflight.delete(key),
        () => this.inflight.delete(key),
      );
    }
    return p;
  }

  /**
   * The answer the cache holds, or a remote cache has (a teammate's build, CI's shards: no request
   * for that). What every request, direct or by batch, looks for first.
   */
  async lookup(key: string, step: GenerateStep): Promise<Answer | undefined> {
    const hit = await this.cache.get(key);
    if (hit && usable(hit, step)) return answerFromEntry(hit, true);
    if (!this.signal.aborted && !this.stopped && this.remote && (await this.remote.fetch(key))) {
      const fetched = await this.cache.get(key);
      if (fetched && usable(fetched, step)) return answerFromEntry(fetched, true);
    }
    return undefined;
  }

  /**
   * The answer the local cache holds now, looked for on the disk itself: what a batch's request
   * is checked against just before it is submitted, as another build sharing the folder may have
   * stored it since this one looked (from a batch that build collected).
   */
  async stored(key: string, step: GenerateStep): Promise<Answer | undefined> {
    const hit = await this.cache.get(key, { fresh: true });
    return hit && usable(hit, step) ? answerFromEntry(hit, true) : undefined;
  }

  /** Whether a request may be sent (--limit, --max-cost, --shard); `batch`: as a line of a batch, at the batch price. */
  allows(step: GenerateStep, req: ChatRequest, sample: Sample, batch: boolean): boolean {
    return this.mayStart(step, req, sample, batch);
  }

  /** What is told of each request: the budget, the progress. */
  get told(): RequestEvents {
    return this.events;
  }

  /** Masks the build's secrets. */
  get redact(): (text: string) => string {
    return this.pool.redact;
  }

  /** Stop the build with this endpoint error (the Batch API's: a refused upload, say). */
  stopWith(err: SynthbuildError): void {
    this.stop(err);
  }

  /**
   * `abandon`: the endpoint is not answering, so the requests on the wire would only time out;
   * otherwise (a refusal of the key, the model, ...) they are waited for and their answers kept.
   */
  private stop(err: SynthbuildError, abandon = false): void {
    if (this.stopped) return;
    this.stopped = err;
    this.pool.stopStarting();
    if (abandon) this.abandon.abort();
  }

  /** Once the requests on the wire have settled (their answers stored), the error that stopped the build. */
  private async whenStopped(): Promise<never> {
    await Promise.allSettled([...this.sent]);
    throw this.stopped!;
  }

  private async request(key: string, req: ChatRequest, sample: Sample, step: GenerateStep): Promise<Answer | undefined> {
    if (!this.mayStart(step, req, sample)) return undefined;
    const set = this.pool.replicasFor(step);
    const provider = (await set.ready())[0]!;
    const budget = new TimeBudget(step.model.timeoutS * 1000, step.model.totalTimeoutS * 1000);
    const started = Date.now();
    let onWire: (() => void) | undefined;
    const landed = () => {
      onWire?.();
      onWire = undefined;
    };
    let answer: ProviderAnswer;
    let attempts = 0;
    /** One attempt on one replica. */
    const attempt = (r: Replica) => async (): Promise<ProviderAnswer> => {
      if (this.stopped) throw new RequestError("the build is stopping", false);
      // Queued here before the replica went out: another takes it (not a failure, nothing sent).
      if (r.health.isOut(Date.now()) && set.hasAlternative(r, Date.now())) throw new ReplicaOut();
      // A retry is a new purchase: the budget may have run out since the first attempt.
      if (attempts++ > 0 && !this.mayStart(step, req, sample)) throw new HeldBack();
      if (!onWire) {
        const p = new Promise<void>((r) => (onWire = r));
        this.sent.add(p);
        void p.then(() => this.sent.delete(p));
      }
      const client = await r.provider;
      const breaker = client.offline ? undefined : r.breaker;
      this.events.onStart?.(step);
      const t0 = Date.now();
      breaker?.attempt(t0);
      let a: ProviderAnswer;
      try {
        // Not the scheduler's signal: a stop halts the schedulers, but a request already sent
        // may finish.
        a = await client.complete(req, this.requestSignal, { timeoutMs: budget.nextTimeoutMs() });
      } catch (e) {
        this.events.onUnanswered?.(step, req);
        if (!client.offline) this.sawFailure(e, step, r, set);
        const charged = budget.charge(Date.now() - t0, e);
        // An endpoint that has never answered is the breaker's to give up on, once, for the
        // whole build: not each sample's, one by one, as their time budgets run out.
        throw breaker && !breaker.everAnswered ? e : charged;
      }
      breaker?.heard(Date.now());
      if (r.health.responded() && set.many) this.events.onWarn?.(`replica ${displayUrl(r.health.url)} answers again: requests go to it once more`);
      r.health.answers++;
      const pricing = this.events.beforePaid?.();
      if (pricing) await pricing;
      this.events.onPaid?.(step, req, a, client.offline);
      if (!dropReason(a)) {
        if (req.json_schema) validateJsonAnswer(a.text, req.json_schema, !client.offline);
      } else if (step.retryEmpty && isRetryableEmpty(a)) {
        throw new RequestError("empty answer (on_empty: retry)", true);
      }
      return a;
    };
    try {
      answer = await set.route(
        (r, route) =>
          r.scheduler.run(
            attempt(r),
            this.estimate(req),
            (a) => (a.usage ? a.usage.input + a.usage.output : undefined),
            (a) => a.limits,
            route,
          ),
        () => !this.stopped,
      );
    } catch (err) {
      landed();
      // The budget ran out before a retry: the sample waits for the next build, like one never sent.
      if (err instanceof RetriesExhausted && err.attempts.at(-1) instanceof HeldBack) return undefined;
      if (this.signal.aborted) {
        this.events.onFailure?.(sample, step, req, "aborted");
        return undefined;
      }
      if (this.stopped) return this.whenStopped();
      if (err instanceof SynthbuildError) throw err;
      // The lock, --json and the summary carry this: no key may be in it, whatever the endpoint echoed.
      const message = this.pool.redact(err instanceof RetriesExhausted ? err.message : (err as Error).message);
      this.events.onFailure?.(sample, step, req, message);
      throw new SampleFailure(message);
    }
    try {
      return await this.store(key, req, sample, step, answer, { offline: provider.offline, started });
    } finally {
      landed();
    }
  }

  /**
   * Store an answer the endpoint gave (directly or in a batch's output file) under its key, tell
   * the events and the remote, and return it as the pipeline reads it.
   */
  async store(
    key: string,
    req: ChatRequest,
    sample: Sample,
    step: GenerateStep,
    answer: ProviderAnswer,
    how: { offline: boolean; started: number },
  ): Promise<Answer> {
    const entry = entryOf(key, req, answer, { ...how, project: this.cache.project });
    // Another build sharing the cache may have stored an answer first: then its answer is the one
    // this lock names too (this one was paid for, and is counted, but not kept).
    let stored: CacheEntry;
    try {
      stored = await this.cache.put(entry);
    } catch (err) {
      // Paid for and lost: say which, and stop (the build's catch drops the requests in flight).
      if (err instanceof CacheWriteError)
        throw new CacheWriteError(
          `${err.message}: the answer for sample ${sample.id} (step '${step.id}') was lost, and the requests in flight are abandoned`,
          err.hint,
        );
      throw err;
    }
    this.events.onAnswer?.(step, req, answer, how.offline);
    this.remote?.stored(key);
    return answerFromEntry(stored, false);
  }

  /**
   * Store an answer no sample of this build asks for (a batch's line whose request the manifest
   * no longer makes): paid for, so kept for the build that asks again, unless one is stored
   * already. Nothing is told: it is neither this build's request nor its cost.
   */
  async keep(key: string, req: ChatRequest, answer: ProviderAnswer): Promise<void> {
    if (await this.cache.get(key, { fresh: true })) return;
    await this.cache.put(entryOf(key, req, answer, { offline: false, started: Date.now(), project: this.cache.project }));
    this.remote?.stored(key);
  }

  /**
   * What a failed attempt says about its replica (the endpoint, when there is one): a refusal of
   * every request, one more silence, or a failure of its own. A replica that is lost is left out;
   * the build stops only when every replica of the step is (one endpoint: at once).
   */
  private sawFailure(e: unknown, step: GenerateStep, r: Replica, set: ReplicaSet): void {
    if (this.signal.aborted || this.stopped) return;
    const now = Date.now();
    const h = r.health;
    const shown = displayUrl(h.url);
    if (e instanceof NoResponse) {
      const breaker = r.breaker;
      const open = breaker.silent(now);
      const s = breaker.silence(now);
      h.lastWhy = e.kind === "connect" ? e.what : `no response in ${step.model.timeoutS} s (model.timeout_s)`;
      if (open) h.down = true;
      if (h.failed(now) && set.hasAlternative(r, now))
        this.events.onWarn?.(
          `replica ${shown} is out: ${this.pool.redact(h.lastWhy)}; the others take its requests, and it is tried again in ${(h.retryInMs(now) / 1000).toFixed(0)} s`,
        );
      if (set.allLost) {
        const detail = set.many
          ? lostWhy(set, s.ms)
          : e.kind === "connect"
            ? `${e.what} (${s.failures} attempts in a row over ${(s.ms / 1000).toFixed(1)} s, ${s.everAnswered ? "none answered since the last answer" : "none answered"})`
            : `${s.failures} attempts in a row got no response in ${step.model.timeoutS} s (model.timeout_s), ${s.everAnswered ? "none since the last answer" : "and none has been answered"}`;
        this.stop(endpointError(e.kind === "connect" ? "unreachable" : "no-answer", this.pool.redact(detail), step, set.many ? set.where : undefined), true);
      }
      return;
    }
    // Any other failure came with (or after) a response: the endpoint is there.
    r.breaker.heard(now);
    if (e instanceof EndpointRefused) {
      // Said once: the requests already on their way there are refused too.
      const first = !h.refused;
      h.refused ??= e;
      const keySet = this.pool.hasKey(r.cfg);
      if (set.allLost) this.stop(endpointError(e.problem, this.pool.redact(e.message), step, set.many ? shown : undefined, r.cfg, keySet));
      else if (first)
        this.events.onWarn?.(
          `replica ${shown} is out for this build: ${endpointError(e.problem, this.pool.redact(e.message), step, shown, r.cfg, keySet).message.split("\n")[0]}; the other replicas take its requests`,
        );
      return;
    }
    if (e instanceof RequestError && replicaFailure(e)) {
      if (h.failed(now) && set.many)
        this.events.onWarn?.(`replica ${shown} is out: ${this.pool.redact(e.message)}; it is tried again in ${(h.retryInMs(now) / 1000).toFixed(0)} s`);
    } else if (h.responded() && set.many) this.events.onWarn?.(`replica ${shown} answers again: requests go to it once more`);
  }
}

/** Why every replica of a set is lost: one reason for all when they agree, else each one's. */
function lostWhy(set: ReplicaSet, quietMs: number): string {
  const whys = set.replicas.map((r) => r.health.refused?.message ?? r.health.lastWhy);
  if (whys.every((w) => w === whys[0])) return `${whys[0]} at each of the ${whys.length} replicas (nothing heard for ${(quietMs / 1000).toFixed(1)} s)`;
  return set.replicas.map((r, i) => `${displayUrl(r.health.url)}: ${whys[i]}`).join("; ");
}

/** A retry the budget does not allow (not retryable: the sample stays pending). */
class HeldBack extends RequestError {
  constructor() {
    super("held back by --max-cost", false);
  }
}

/**
 * Tokens a request will use, for tpm pacing before the real usage is known: its input counted
 * with the tokenizer when one is loaded (builds with a tpm limit load it), else ~4 characters a
 * token; plus max_tokens, what the answer may use at most.
 */
export function estimateTokens(req: ChatRequest, count?: (text: string) => number): number {
  const input = count ? requestTokens(count, req) : Math.ceil(req.messages.reduce((n, m) => n + m.content.length, 0) / 4);
  return input + Number(req.params.max_tokens ?? req.params.max_completion_tokens ?? 0);
}
