import type { ChatRequest } from "../plan/request.js";
import type { StatedLimits } from "./rate-headers.js";

export interface ProviderAnswer {
  text: string;
  finishReason: string;
  usage?: { input: number; output: number };
  model?: string;
  fingerprint?: string;
  requestId?: string;
  /** The limits the endpoint stated with this answer (x-ratelimit-*). */
  limits?: StatedLimits;
}

export interface Provider {
  readonly offline: boolean;
  complete(req: ChatRequest, signal: AbortSignal): Promise<ProviderAnswer>;
}

/**
 * A request that did not produce an answer. Whether to try again is decided here, where the cause
 * is known; the scheduler only reads `retryable` and `retryAfterMs`.
 */
export class RequestError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    readonly retryAfterMs?: number,
    /** The limits the endpoint stated with this refusal (x-ratelimit-*): tells a rate limit from a concurrency one. */
    readonly limits?: StatedLimits,
  ) {
    super(message);
    this.name = "RequestError";
  }
}
