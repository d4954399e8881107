import { setTimeout as sleep } from "node:timers/promises";
import { RemoteUnavailableError } from "./types.js";

export interface RetryPolicy {
  /** Attempts after the first (default 4). */
  retries?: number;
  /** First backoff; doubled each time, with jitter (default 200 ms). */
  baseDelayMs?: number;
  maxDelayMs?: number;
  signal?: AbortSignal;
}

/** Retry what the remote says is transient (RemoteUnavailableError); anything else fails at once. */
export async function withRetry<T>(fn: () => Promise<T>, policy: RetryPolicy = {}): Promise<T> {
  const retries = policy.retries ?? 4;
  const base = policy.baseDelayMs ?? 200;
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (!(err instanceof RemoteUnavailableError) || attempt >= retries || policy.signal?.aborted) throw err;
      const delay = Math.min(policy.maxDelayMs ?? 10_000, base * 2 ** attempt);
      await sleep(delay / 2 + Math.random() * (delay / 2), undefined, { signal: policy.signal });
    }
  }
}
