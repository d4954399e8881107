/**
 * Tells an endpoint that is down from one that is flaky. Every attempt that got no HTTP response
 * at all (the connection refused, DNS or TLS failing, nothing back before the timeout) counts;
 * any response, even an error status, proves the endpoint is there and starts the count again.
 *
 * It opens when the last `failures` attempts in a row got nothing and nothing has been heard for
 * `quietMs`: 2 s if the endpoint has not answered once in this build (a dead port fails in
 * milliseconds, and 24 samples × 7 attempts of it took 27 s to learn nothing), 30 s once it has
 * (a server restarting or a network blip mid-build is waited out). A count alone would open on a
 * burst of simultaneous refusals from a server still starting; a time alone would open on one
 * slow request. A flaky endpoint answers some requests, which resets both.
 */
export class Breaker {
  private lastHeard?: number;
  private answered = false;
  private failures = 0;

  constructor(private readonly rule: { failures: number; quietMs: number; quietAfterAnswerMs: number } = BREAKER_RULE) {}

  /** An attempt is about to be sent: the quiet time starts with the first. */
  attempt(now: number): void {
    this.lastHeard ??= now;
  }

  /** Any HTTP response. */
  heard(now: number): void {
    this.lastHeard = now;
    this.answered = true;
    this.failures = 0;
  }

  /** An attempt got no response; true when the endpoint is to be given up on. */
  silent(now: number): boolean {
    this.lastHeard ??= now;
    this.failures++;
    const quiet = this.answered ? this.rule.quietAfterAnswerMs : this.rule.quietMs;
    return this.failures >= this.rule.failures && now - this.lastHeard >= quiet;
  }

  /** Whether the endpoint has answered once in this build: until it has, the breaker, not a request's own time budget, decides. */
  get everAnswered(): boolean {
    return this.answered;
  }

  /** For the message: how long nothing has been heard, and how many attempts got nothing. */
  silence(now: number): { ms: number; failures: number; everAnswered: boolean } {
    return { ms: now - (this.lastHeard ?? now), failures: this.failures, everAnswered: this.answered };
  }
}

export const BREAKER_RULE = { failures: 3, quietMs: 2_000, quietAfterAnswerMs: 30_000 };
