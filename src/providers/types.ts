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
  /** The Batch API batch whose output file held it (absent for a direct request): paid at the batch price. */
  batch?: string;
}

export interface Provider {
  readonly offline: boolean;
  /** `timeoutMs` overrides the endpoint's per-attempt timeout (a request's remaining time budget). */
  complete(req: ChatRequest, signal: AbortSignal, opts?: { timeoutMs?: number }): Promise<ProviderAnswer>;
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

/** What about an endpoint makes every request to it fail, whatever the request says. */
export type EndpointProblem = "auth" | "forbidden" | "model" | "path" | "schema" | "quota";

/**
 * The endpoint refused in a way that concerns every request, not this one: the key, the project,
 * the model, the URL, or the step's json_schema (the same for each of its requests). Never retried;
 * the build stops at the first.
 */
export class EndpointRefused extends RequestError {
  constructor(
    message: string,
    readonly problem: EndpointProblem,
    status: number,
  ) {
    super(message, false, status);
  }
}

/**
 * No HTTP response at all: the connection could not be made (refused, DNS, TLS) or nothing came
 * back in time. Retried like any transient failure; the breaker counts them to tell a dead
 * endpoint from a flaky one.
 */
export class NoResponse extends RequestError {
  constructor(
    message: string,
    readonly kind: "connect" | "timeout",
    /** For connection failures, what went wrong in a few words ("connection refused"). */
    readonly what: string,
  ) {
    super(message, true);
  }
}
