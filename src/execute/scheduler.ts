import { setTimeout as sleep } from "node:timers/promises";
import { RequestError } from "../providers/types.js";

export interface SchedulerOptions {
  concurrency: number;
  rpm?: number;
  tpm?: number;
  /** Attempts after the first. */
  retries: number;
  signal: AbortSignal;
  /** Base of the exponential backoff, in ms. */
  backoffMs?: number;
  maxBackoffMs?: number;
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
 * The one gate every request passes: a concurrency limit, client-side rpm/tpm pacing, and retries
 * with jittered exponential backoff that honour the server's retry-after. A 429 halves the
 * effective concurrency; successes win it back one slot at a time, so a rate-limited endpoint is
 * driven at its own pace instead of being hammered with retries.
 */
export class Scheduler {
  private active = 0;
  private limit: number;
  private readonly waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private nextRequestAt = 0;
  private nextTokenAt = 0;
  private successesSinceCut = 0;
  private pausedUntil = 0;

  constructor(private readonly opts: SchedulerOptions) {
    this.limit = opts.concurrency;
    opts.signal.addEventListener("abort", () => this.abortWaiters(), { once: true });
  }

  get effectiveConcurrency(): number {
    return this.limit;
  }

  /**
   * Run one request under the limits. `estimatedTokens` paces it against the tpm before it is
   * sent; `actualTokens` reads the real usage from the answer, and the difference is settled
   * against the token budget so estimates never drift the rate.
   */
  async run<T>(fn: (signal: AbortSignal) => Promise<T>, estimatedTokens = 0, actualTokens?: (result: T) => number | undefined): Promise<T> {
    const attempts: RequestError[] = [];
    for (;;) {
      await this.acquire();
      let err: RequestError;
      try {
        await this.pace(estimatedTokens);
        if (this.opts.signal.aborted) throw new RequestError("aborted", false);
        const result = await fn(this.opts.signal);
        this.succeeded();
        const actual = actualTokens?.(result);
        if (this.opts.tpm && actual !== undefined) this.nextTokenAt += ((actual - estimatedTokens) * 60_000) / this.opts.tpm;
        return result;
      } catch (e) {
        err = e instanceof RequestError ? e : new RequestError((e as Error).message, false);
      } finally {
        this.release();
      }
      if (this.opts.signal.aborted) throw new RequestError("aborted", false);
      attempts.push(err);
      if (!err.retryable || attempts.length > this.opts.retries) throw new RetriesExhausted(attempts);
      const delayMs = this.backoff(attempts.length, err);
      if (err.status === 429) this.cut(err.retryAfterMs);
      this.opts.onRetry?.({ attempt: attempts.length, delayMs, error: err });
      try {
        await sleep(delayMs, undefined, { signal: this.opts.signal });
      } catch {
        throw new RequestError("aborted", false);
      }
    }
  }

  private backoff(attempt: number, err: RequestError): number {
    if (err.retryAfterMs !== undefined) return err.retryAfterMs + Math.random() * 50;
    const base = this.opts.backoffMs ?? 500;
    const cap = this.opts.maxBackoffMs ?? 30_000;
    const exp = Math.min(cap, base * 2 ** (attempt - 1));
    return exp / 2 + Math.random() * (exp / 2);
  }

  /**
   * Space request starts evenly at the rpm (no burst allowance: a burst followed by steady
   * pacing would exceed the limit over any sliding minute), and tokens at the tpm.
   */
  private async pace(tokens: number): Promise<void> {
    const now = Date.now();
    // After a 429 the server said when it will take requests again: nobody starts before then.
    let start = Math.max(now, this.pausedUntil);
    if (this.opts.rpm) {
      start = Math.max(start, this.nextRequestAt);
      this.nextRequestAt = start + 60_000 / this.opts.rpm;
    }
    if (this.opts.tpm && tokens > 0) {
      start = Math.max(start, this.nextTokenAt);
      this.nextTokenAt = Math.max(this.nextTokenAt, start) + (tokens * 60_000) / this.opts.tpm;
    }
    if (start > now) await sleep(start - now, undefined, { signal: this.opts.signal });
  }

  private cut(retryAfterMs: number | undefined): void {
    this.limit = Math.max(1, Math.floor(this.limit / 2));
    this.successesSinceCut = 0;
    if (retryAfterMs !== undefined) this.pausedUntil = Math.max(this.pausedUntil, Date.now() + retryAfterMs);
  }

  private succeeded(): void {
    if (this.limit >= this.opts.concurrency) return;
    if (++this.successesSinceCut >= this.limit) {
      this.limit++;
      this.successesSinceCut = 0;
      this.wake();
    }
  }

  private async acquire(): Promise<void> {
    if (this.opts.signal.aborted) throw new RequestError("aborted", false);
    if (this.active < this.limit) {
      this.active++;
      return;
    }
    // The releasing side hands its slot over (wake() counts it), so no two waiters share one.
    await new Promise<void>((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  private release(): void {
    this.active--;
    this.wake();
  }

  private wake(): void {
    while (this.active < this.limit && this.waiters.length) {
      this.active++;
      this.waiters.shift()!.resolve();
    }
  }

  private abortWaiters(): void {
    for (const w of this.waiters.splice(0)) w.reject(new RequestError("aborted", false));
  }
}
