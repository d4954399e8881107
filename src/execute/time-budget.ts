import { RequestError } from "../providers/types.js";

/**
 * How long one request may wait for answers over all its attempts (`model.total_timeout_s`), on
 * top of each attempt's own `timeout_s`. Only time spent waiting on the endpoint counts: the waits
 * between attempts and for rate limits do not, so a rate-limited request never runs out of it
 * while the endpoint makes progress. Without it a server that accepts the connection and never
 * answers held each sample for 7 × 120 s.
 */
export class TimeBudget {
  private spentMs = 0;

  constructor(
    private readonly attemptMs: number,
    private readonly totalMs: number,
  ) {}

  /** The timeout of the next attempt: its own, or what is left of the total if that is less. */
  nextTimeoutMs(): number {
    return Math.max(1, Math.min(this.attemptMs, this.totalMs - this.spentMs));
  }

  /** A failed attempt took `ms`: its error, made final once the total is used up. */
  charge(ms: number, err: unknown): unknown {
    this.spentMs += ms;
    if (err instanceof RequestError && err.retryable && this.spentMs >= this.totalMs - 1) {
      return new RequestError(`${err.message}; model.total_timeout_s (${Number((this.totalMs / 1000).toFixed(3))} s) is used up`, false, err.status);
    }
    return err;
  }
}
