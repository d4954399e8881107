/**
 * The limits a real gateway enforces, for the test server: requests and tokens per minute, enforced
 * over the whole minute or over shorter windows (OpenAI documents that 60,000 rpm may be enforced as
 * 1,000 requests per second), and a cap on requests in flight. One `Gateway` per server process:
 * every client of that process shares its limits, as every process using one API key shares its
 * provider's.
 */

export interface GatewayOptions {
  /** requests per `minuteMs`; beyond it, 429 */
  rpm?: number;
  /** tokens per `minuteMs` (a request counts its prompt plus max_tokens, as OpenAI counts at admission) */
  tpm?: number;
  /** length of the "minute" (default 60 000 ms): tests shorten it so windows slide quickly */
  minuteMs?: number;
  /**
   * Enforce the per-minute limits over sliding windows this long, each allowing its share
   * (rpm × windowMs / minuteMs, at least 1). Unset: over the whole minute.
   */
  enforceOverMs?: number;
  /** more than this many requests in flight at once: 429, with no retry-after (there is no time to wait for) */
  maxInFlight?: number;
  /** state the limits in x-ratelimit-* headers (default true) */
  stateLimits?: boolean;
  /**
   * With a rate refusal, send retry-after and retry-after-ms (true, the default), only retry-after
   * in whole seconds ("seconds", as many gateways do), or neither (false: OpenAI's refusals often
   * carry only the x-ratelimit-* headers).
   */
  retryAfter?: boolean | "seconds";
}

type Headers = Record<string, string | number>;

export interface Refusal {
  message: string;
  headers: Headers;
}

/** Admitted (time, weight) pairs over a sliding window, oldest first. */
class SlidingWindow {
  private times: number[] = [];
  private weights: number[] = [];
  private head = 0;
  private sum = 0;

  constructor(readonly lengthMs: number) {}

  used(now: number): number {
    while (this.head < this.times.length && this.times[this.head]! <= now - this.lengthMs) this.sum -= this.weights[this.head++]!;
    if (this.head > 4096 && this.head * 2 > this.times.length) {
      this.times = this.times.slice(this.head);
      this.weights = this.weights.slice(this.head);
      this.head = 0;
    }
    return this.sum;
  }

  add(now: number, weight: number): void {
    this.times.push(now);
    this.weights.push(weight);
    this.sum += weight;
  }

  /** ms until the weight in the window drops to `limit - weight` or less, so `weight` more fits. */
  waitFor(now: number, weight: number, limit: number): number {
    let free = limit - this.used(now);
    for (let i = this.head; i < this.times.length; i++) {
      free += this.weights[i]!;
      if (free >= weight) return Math.max(1, this.times[i]! + this.lengthMs - now);
    }
    return this.lengthMs;
  }

  clear(): void {
    this.times = [];
    this.weights = [];
    this.head = 0;
    this.sum = 0;
  }
}

export class Gateway {
  private readonly minuteMs: number;
  private readonly enforced: { requests?: SlidingWindow; tokens?: SlidingWindow; perWindow: { requests: number; tokens: number } };
  /** What the headers state: use over the whole minute. */
  private readonly minute: { requests: SlidingWindow; tokens: SlidingWindow };
  private admittedInFlight = 0;

  constructor(private readonly opts: GatewayOptions) {
    for (const k of ["rpm", "tpm", "maxInFlight"] as const) {
      const v = opts[k];
      if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new Error(`${k} must be a positive integer, got ${v}`);
    }
    this.minuteMs = opts.minuteMs ?? 60_000;
    const over = opts.enforceOverMs ?? this.minuteMs;
    const share = (perMinute: number | undefined) => (perMinute ? Math.max(1, Math.floor((perMinute * over) / this.minuteMs)) : 0);
    this.enforced = {
      requests: opts.rpm ? new SlidingWindow(over) : undefined,
      tokens: opts.tpm ? new SlidingWindow(over) : undefined,
      perWindow: { requests: share(opts.rpm), tokens: share(opts.tpm) },
    };
    this.minute = { requests: new SlidingWindow(this.minuteMs), tokens: new SlidingWindow(this.minuteMs) };
  }

  /**
   * Admit a request that will count `tokens`, or say why not. An admitted request holds its
   * in-flight slot until `release` is called (when its response closes).
   */
  admit(now: number, tokens: number): { release: () => void } | Refusal {
    const { requests, tokens: tokenWindow, perWindow } = this.enforced;
    if (this.opts.maxInFlight !== undefined && this.admittedInFlight >= this.opts.maxInFlight) {
      return { message: `Too many concurrent requests: limit ${this.opts.maxInFlight} in flight (synthbuild test server).`, headers: this.stated(now) };
    }
    if (requests && requests.used(now) + 1 > perWindow.requests) {
      const waitMs = requests.waitFor(now, 1, perWindow.requests);
      return {
        message: `Rate limit reached for requests: limit ${this.opts.rpm} per ${this.minuteMs / 1000}s, enforced as ${perWindow.requests} per ${requests.lengthMs / 1000}s (synthbuild test server).`,
        headers: { ...this.stated(now, true), ...this.retryAfter(waitMs) },
      };
    }
    if (tokenWindow && tokenWindow.used(now) + tokens > perWindow.tokens) {
      const waitMs = tokenWindow.waitFor(now, Math.min(tokens, perWindow.tokens), perWindow.tokens);
      return {
        message: `Rate limit reached for tokens: limit ${this.opts.tpm} per ${this.minuteMs / 1000}s, requested ${tokens} (synthbuild test server).`,
        headers: { ...this.stated(now, false, true), ...this.retryAfter(waitMs) },
      };
    }
    requests?.add(now, 1);
    tokenWindow?.add(now, tokens);
    this.minute.requests.add(now, 1);
    this.minute.tokens.add(now, tokens);
    this.admittedInFlight++;
    let released = false;
    return {
      release: () => {
        if (!released) this.admittedInFlight--;
        released = true;
      },
    };
  }

  private retryAfter(waitMs: number): Headers {
    const style = this.opts.retryAfter ?? true;
    if (style === false) return {};
    const seconds = { "retry-after": String(Math.ceil(waitMs / 1000)) };
    return style === "seconds" ? seconds : { ...seconds, "retry-after-ms": String(waitMs) };
  }

  /**
   * x-ratelimit-* as OpenAI states them: the per-minute limit, what is left of it, and when it is
   * whole again, as a bucket that refills continuously (used × minute / limit).
   */
  stated(now: number, requestsExhausted = false, tokensExhausted = false): Headers {
    if (this.opts.stateLimits === false) return {};
    const h: Headers = {};
    if (this.opts.rpm) {
      h["x-ratelimit-limit-requests"] = this.opts.rpm;
      h["x-ratelimit-remaining-requests"] = requestsExhausted ? 0 : Math.max(0, this.opts.rpm - this.minute.requests.used(now));
      h["x-ratelimit-reset-requests"] = formatResetDuration((this.minute.requests.used(now) * this.minuteMs) / this.opts.rpm);
    }
    if (this.opts.tpm) {
      h["x-ratelimit-limit-tokens"] = this.opts.tpm;
      h["x-ratelimit-remaining-tokens"] = tokensExhausted ? 0 : Math.max(0, this.opts.tpm - this.minute.tokens.used(now));
      h["x-ratelimit-reset-tokens"] = formatResetDuration((this.minute.tokens.used(now) * this.minuteMs) / this.opts.tpm);
    }
    return h;
  }

  /** Forget what was admitted (requests still in flight keep their slots). */
  reset(): void {
    this.enforced.requests?.clear();
    this.enforced.tokens?.clear();
    this.minute.requests.clear();
    this.minute.tokens.clear();
  }
}

/** OpenAI's x-ratelimit-reset-* style: "250ms", "1.5s", "1m2s". */
export function formatResetDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.ceil(ms))}ms`;
  const totalSec = ms / 1000;
  if (totalSec < 60) return `${Math.round(totalSec * 1000) / 1000}s`;
  const m = Math.floor(totalSec / 60);
  return `${m}m${Math.round((totalSec - m * 60) * 1000) / 1000}s`;
}
