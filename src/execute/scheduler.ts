import type { StatedLimits } from "../providers/rate-headers.js";
import { RequestError } from "../providers/types.js";
import { sleep } from "../util/sleep.js";
import { RatePacer } from "./rate-pacer.js";

export interface SchedulerOptions {
  concurrency: number;
  /** Declared limits; where they are absent, the limits the endpoint states are used. */
  rpm?: number;
  tpm?: number;
  /** Attempts after the first, for errors; a 429 while the endpoint is making progress is not one. */
  retries: number;
  signal: AbortSignal;
  /** Base of the exponential backoff, in ms. */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** A server's retry-after is honoured up to this (the openai SDK's cap: 60 s). */
  maxRetryAfterMs?: number;
  /** A 429 counts against `retries` only when no request has been answered for this long. */
  progressWindowMs?: number;
  onRetry?: (info: { attempt: number; delayMs: number; error: RequestError }) => void;
}

/** A request that failed on every attempt; carries each attempt's error. */
export class RetriesExhausted extends Error {
  constructor(readonly attempts: RequestError[]) {
    const last = attempts[attempts.length - 1]!;
    super(attempts.length > 1 ? `${last.message} (after ${attempts.length} attempts)` : last.message);
  }
}

/**
 * A request's way out of this scheduler to another replica's. `divert` is asked after each failed
 * attempt (once this scheduler has learnt from it: a 429 still cuts its concurrency); true ends
 * the request here with `Diverted`. `attempts` made elsewhere are carried on, so the error of a
 * request that fails at last names every attempt.
 */
export interface Route {
  divert(err: RequestError): boolean;
  readonly attempts: readonly RequestError[];
  /** The failures counted against `retries` at the replicas tried before: a request's retries are its own, wherever it goes. */
  readonly counted?: number;
}

/** The request left this scheduler for another replica's (see `Route`). */
export class Diverted extends Error {
  constructor(
    readonly attempts: RequestError[],
    readonly counted = 0,
  ) {
    super("diverted to another replica");
  }
}

/** What one attempt needs to know about the scheduler's state when it started. */
interface Attempt {
  seq: number;
}

/**
 * The one gate every request passes. Two limits, each adapted once per congestion event:
 *
 * - Concurrency. A 429 that is not about the rate (a server refusing more than K in flight) cuts
 *   the limit to three quarters; every 429 of requests sent before that cut belongs to the same
 *   event and cuts nothing more. Each `limit` answers (one round trip's worth) win a slot back.
 * - Rate. With an rpm declared, or stated by the endpoint, starts are paced (see RatePacer). A 429
 *   while the rate is what holds requests back is a rate event: the pace slows a little and
 *   recovers as answers come (another client may be sharing the limit).
 *
 * Retries back off exponentially for errors and honour retry-after (capped). A rate-limited
 * request is retried without using its error budget while the endpoint is answering others: it
 * is waiting its turn, not failing.
 */
export class Scheduler {
  private active = 0;
  private limit: number;
  private readonly waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private successesSinceCut = 0;
  /** Sequence number of attempts; a 429 of an attempt started before the last cut is the same event. */
  private seq = 0;
  private concurrencyCutAt = 0;
  private readonly pacer: RatePacer;
  /** No answer yet is no evidence of progress: the first refusals count. */
  private lastAnswerAt = Number.NEGATIVE_INFINITY;
  /** Requests waiting for an answer to free a server slot before they retry (a concurrency 429). */
  private readonly slotWaiters: (() => void)[] = [];
  private readonly freeListeners: (() => void)[] = [];

  constructor(private readonly opts: SchedulerOptions) {
    this.limit = opts.concurrency;
    this.pacer = new RatePacer({ rpm: opts.rpm, tpm: opts.tpm, signal: opts.signal });
    opts.signal.addEventListener("abort", () => this.abortWaiters(), { once: true });
  }

  get effectiveConcurrency(): number {
    return this.limit;
  }

  /** Requests holding or waiting for a slot, per slot: how busy this endpoint is, for routing between replicas. */
  get load(): number {
    return (this.active + this.waiters.length) / this.limit;
  }

  /** Requests a minute the pacer holds starts to (undefined: no rate known). */
  get pacedRpm(): number | undefined {
    return this.pacer.rpm;
  }

  /**
   * Run one request under the limits. `estimatedTokens` paces it against the tpm before it is
   * sent; `actualTokens` reads the real usage from the answer, and the difference is settled
   * against the token budget so estimates never drift the rate; `limitsOf` reads the limits the
   * endpoint stated with the answer.
   */
  async run<T>(
    fn: (signal: AbortSignal) => Promise<T>,
    estimatedTokens = 0,
    actualTokens?: (result: T) => number | undefined,
    limitsOf?: (result: T) => StatedLimits | undefined,
    route?: Route,
  ): Promise<T> {
    const attempts: RequestError[] = [...(route?.attempts ?? [])];
    let counted = route?.counted ?? 0;
    let retry = false;
    for (;;) {
      await this.acquire(retry);
      let err: RequestError;
      const attempt: Attempt = { seq: 0 };
      try {
        await this.pacer.wait(estimatedTokens);
        if (this.opts.signal.aborted) throw new RequestError("aborted", false);
        attempt.seq = ++this.seq;
        const result = await fn(this.opts.signal);
        this.answered(limitsOf?.(result));
        const actual = actualTokens?.(result);
        if (actual !== undefined) this.pacer.settleTokens(estimatedTokens, actual);
        return result;
      } catch (e) {
        err = e instanceof RequestError ? e : new RequestError((e as Error).message, false);
      } finally {
        this.release();
      }
      if (this.opts.signal.aborted) throw new RequestError("aborted", false);
      attempts.push(err);
      const refused = err.status === 429;
      if (route?.divert(err)) {
        if (refused) this.refused(err, attempt, counted);
        throw new Diverted(attempts, counted);
      }
      if (!err.retryable) throw new RetriesExhausted(attempts);
      const now = Date.now();
      // Waiting its turn while others get through is not a failure of this request.
      const progressing = now - this.lastAnswerAt < (this.opts.progressWindowMs ?? 60_000);
      if (!(refused && progressing)) counted++;
      if (counted > this.opts.retries) throw new RetriesExhausted(attempts);
      let delayMs: number;
      if (refused) delayMs = this.refused(err, attempt, counted);
      else delayMs = this.backoff(counted, err);
      this.opts.onRetry?.({ attempt: attempts.length, delayMs, error: err });
      retry = true;
      try {
        if (delayMs < 0) await this.nextAnswer();
        else await sleep(delayMs, this.opts.signal);
      } catch {
        throw new RequestError("aborted", false);
      }
    }
  }

  private retryAfter(err: RequestError): number | undefined {
    if (err.retryAfterMs === undefined) return undefined;
    return Math.min(err.retryAfterMs, this.opts.maxRetryAfterMs ?? 60_000);
  }

  private backoff(attempt: number, err: RequestError): number {
    const after = this.retryAfter(err);
    if (after !== undefined) return after + Math.random() * 50;
    const base = this.opts.backoffMs ?? 500;
    const cap = this.opts.maxBackoffMs ?? 30_000;
    const exp = Math.min(cap, base * 2 ** Math.max(0, attempt - 1));
    return exp / 2 + Math.random() * (exp / 2);
  }

  /**
   * A 429: a rate event when the endpoint says the rate is spent or the pacer is what holds
   * requests back, else a concurrency event. Returns the delay before the retry; -1 means "when
   * the next answer frees a slot".
   */
  private refused(err: RequestError, attempt: Attempt, counted: number): number {
    if (err.limits) this.pacer.learn(err.limits, this.seq);
    const after = this.retryAfter(err);
    const spent = err.limits?.remainingRequests === 0 || err.limits?.remainingTokens === 0;
    if (spent || this.pacer.binding()) {
      this.pacer.congested(attempt.seq, this.seq, after);
      return after !== undefined ? after + Math.random() * 50 : this.pacer.intervalMs() * (1 + Math.random());
    }
    if (attempt.seq > this.concurrencyCutAt) {
      this.concurrencyCutAt = this.seq;
      this.limit = Math.max(1, Math.floor(this.limit * 0.75));
      this.successesSinceCut = 0;
    }
    if (after !== undefined) {
      this.pacer.pause(after);
      return after + Math.random() * 50;
    }
    // Refused for being one too many in flight: retry when an answer frees a slot, or after a
    // backoff when nothing of ours is in flight to free one.
    return this.active > 0 ? -1 : this.backoff(counted, err);
  }

  private answered(limits: StatedLimits | undefined): void {
    this.lastAnswerAt = Date.now();
    if (limits) this.pacer.learn(limits, this.seq);
    this.pacer.answered(limits);
    this.slotWaiters.shift()?.();
    if (this.limit >= this.opts.concurrency) return;
    if (++this.successesSinceCut >= this.limit) {
      this.limit++;
      this.successesSinceCut = 0;
      this.wake();
    }
  }

  private nextAnswer(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (this.opts.signal.aborted) return reject(new Error("aborted"));
      const done = () => {
        this.opts.signal.removeEventListener("abort", onAbort);
        resolve();
      };
      const onAbort = () => {
        const i = this.slotWaiters.indexOf(done);
        if (i >= 0) this.slotWaiters.splice(i, 1);
        reject(new Error("aborted"));
      };
      this.opts.signal.addEventListener("abort", onAbort, { once: true });
      this.slotWaiters.push(done);
    });
  }

  /** A retry goes to the front of the queue: it has waited already, and the tail of a build is its oldest samples. */
  private async acquire(retry: boolean): Promise<void> {
    if (this.opts.signal.aborted) throw new RequestError("aborted", false);
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    // The releasing side hands its slot over (wake() counts it), so no two waiters share one.
    await new Promise<void>((resolve, reject) => {
      const w = { resolve, reject };
      if (retry) this.waiters.unshift(w);
      else this.waiters.push(w);
    });
  }

  private release(): void {
    this.active--;
    // Nothing left in flight to answer: whoever waits for an answer to free a slot goes now.
    if (this.active === 0) for (const w of this.slotWaiters.splice(0)) w();
    this.wake();
  }

  private wake(): void {
    while (this.active < this.limit && this.waiters.length) {
      this.active++;
      this.waiters.shift()!.resolve();
    }
    if (this.active < this.limit) for (const l of this.freeListeners) l();
  }

  /** Told each time a slot is free once this scheduler's own queue is served: a router waiting for any replica's slot listens. */
  onFree(listener: () => void): void {
    this.freeListeners.push(listener);
  }

  private abortWaiters(): void {
    for (const w of this.waiters.splice(0)) w.reject(new RequestError("aborted", false));
  }
}
