import type { StatedLimits } from "../providers/rate-headers.js";
import { sleep } from "../util/sleep.js";

/** The enforcement window assumed: OpenAI documents that a per-minute limit may be enforced per second. */
const WINDOW_MS = 1000;
/** Slack per window for the time between our clock and the server's (arrival jitter, a late timer). */
const MARGIN_MS = 5;
/** A rate event slows the pace this much; answers win it back at RECOVERY of the limit per second of traffic. */
const CUT = 0.95;
const RECOVERY = 0.02;
/** How late a timer may fire and the schedule still be kept. */
const LATE_MS = 25;
/** Start times kept: a window's worth at up to 60,000 rpm. */
const HISTORY = 1024;

/**
 * When the next request may start, under a rate (requests and tokens a minute, declared or stated
 * by the endpoint). Starts are spaced evenly, and no second holds more than its share: a start
 * waits until the one `n` starts before it is more than a window (plus a margin) old. Even spacing
 * alone is not enough against a server that counts per second: one timer firing late and the next
 * catching up puts n + 1 into some second. Starts are taken one at a time, in call order.
 */
export class RatePacer {
  private declared: { rpm?: number; tpm?: number };
  private stated: { rpm?: number; tpm?: number } = {};
  /** Share of the limit we pace at: below 1 after 429s (another client may share the limit). */
  private factor = 1;
  private cutAt = 0;
  private pausedUntil = 0;
  private nextRequestAt = 0;
  private nextTokenAt = 0;
  /** Actual start times, oldest first, for the per-window count. */
  private starts: number[] = [];
  private heldAt = Number.NEGATIVE_INFINITY;
  private queued = 0;
  private chain: Promise<void> = Promise.resolve();

  constructor(private readonly opts: { rpm?: number; tpm?: number; signal: AbortSignal }) {
    this.declared = { rpm: opts.rpm, tpm: opts.tpm };
  }

  /** The rate paced at, in requests a minute; undefined when none is known. */
  get rpm(): number | undefined {
    const base = this.declared.rpm ?? this.stated.rpm;
    return base === undefined ? undefined : base * this.factor;
  }

  private get tpm(): number | undefined {
    const base = this.declared.tpm ?? this.stated.tpm;
    return base === undefined ? undefined : base * this.factor;
  }

  intervalMs(): number {
    const rpm = this.rpm;
    return rpm ? 60_000 / rpm : 0;
  }

  /** Wait for this request's turn to start. */
  wait(tokens: number): Promise<void> {
    this.queued++;
    const turn = this.chain.then(() => this.take(tokens));
    this.chain = turn.catch(() => {});
    return turn.finally(() => this.queued--);
  }

  private async take(tokens: number): Promise<void> {
    for (;;) {
      const now = Date.now();
      const at = this.earliest(tokens, now);
      if (at <= now) break;
      this.heldAt = now;
      await sleep(at - now, this.opts.signal);
    }
    const now = Date.now();
    // Recorded before any rate is known too: the burst sent before the first stated limit counts
    // against the window that follows.
    this.starts.push(now);
    if (this.starts.length > 2 * HISTORY) this.starts = this.starts.slice(-HISTORY);
    const rpm = this.rpm;
    if (rpm) {
      const interval = 60_000 / rpm;
      // The schedule absorbs a timer that fired a little late, and no more: a start held back by
      // the per-window count must not let the next one follow at once.
      const due = this.nextRequestAt;
      this.nextRequestAt = (now - due <= Math.min(LATE_MS, interval) ? due : now) + interval;
    }
    const tpm = this.tpm;
    if (tpm && tokens > 0) this.nextTokenAt = Math.max(this.nextTokenAt, now) + (tokens * 60_000) / tpm;
  }

  private earliest(tokens: number, now: number): number {
    let at = Math.max(now, this.pausedUntil);
    const rpm = this.rpm;
    if (rpm) {
      at = Math.max(at, this.nextRequestAt);
      const n = Math.max(1, Math.floor((rpm * WINDOW_MS) / 60_000));
      const span = (n * 60_000) / rpm;
      const nth = this.starts[this.starts.length - n];
      if (nth !== undefined) at = Math.max(at, nth + span + MARGIN_MS);
    }
    if (this.tpm && tokens > 0) at = Math.max(at, this.nextTokenAt);
    return at;
  }

  /** Whether the rate is what holds requests back now (so a 429 is about the rate, not concurrency). */
  binding(): boolean {
    if (!this.rpm && !this.tpm) return false;
    return this.queued > 1 || Date.now() - this.heldAt < Math.max(WINDOW_MS, 2 * this.intervalMs());
  }

  /** Real usage replaces the estimate a request was paced at. */
  settleTokens(estimated: number, actual: number): void {
    const tpm = this.tpm;
    if (tpm) this.nextTokenAt += ((actual - estimated) * 60_000) / tpm;
  }

  /** Nobody starts before `ms` from now (a server's retry-after). */
  pause(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, Date.now() + ms);
  }

  /**
   * Limits the endpoint stated; used where none are declared. Refusals of requests sent before a
   * limit was known are not congestion of the pace that follows.
   */
  learn(limits: StatedLimits, seq: number): void {
    if (limits.rpm && !this.stated.rpm) this.cutAt = Math.max(this.cutAt, seq);
    if (limits.tpm && !this.stated.tpm) this.cutAt = Math.max(this.cutAt, seq);
    if (limits.rpm) this.stated.rpm = limits.rpm;
    if (limits.tpm) this.stated.tpm = limits.tpm;
  }

  /** A 429 of the rate; one cut per event: refusals of requests started before the last cut are the same event. */
  congested(attemptSeq: number, seq: number, retryAfterMs: number | undefined): void {
    if (retryAfterMs !== undefined) this.pause(retryAfterMs);
    if (attemptSeq <= this.cutAt) return;
    this.cutAt = seq;
    this.factor = Math.max(0.05, this.factor * CUT);
  }

  answered(limits: StatedLimits | undefined): void {
    const rpm = this.rpm;
    if (rpm && this.factor < 1) this.factor = Math.min(1, this.factor + RECOVERY / Math.max(1, rpm / 60));
    // The endpoint says the next request would be refused: wait for one request's worth to refill.
    const base = this.declared.rpm ?? this.stated.rpm;
    if (limits?.remainingRequests === 0 && base) this.pause(Math.min(limits.resetRequestsMs ?? Number.POSITIVE_INFINITY, 60_000 / base));
  }
}
