import OpenAI from "openai";
import type { ModelConfig } from "../manifest/types.js";
import type { ChatRequest } from "../plan/request.js";
import { createHttpFetch } from "./http-fetch.js";
import { proxyFor } from "./proxy.js";
import { type StatedLimits, statedLimits } from "./rate-headers.js";
import { type Provider, type ProviderAnswer, RequestError } from "./types.js";

/**
 * Any OpenAI-compatible chat endpoint (OpenAI, gateways, vLLM, llama.cpp, Ollama). The SDK's own
 * retries are off: the scheduler owns retries, so they never multiply.
 */
export class OpenAIProvider implements Provider {
  readonly offline = false;
  private readonly client: OpenAI;

  constructor(cfg: ModelConfig, apiKey: string) {
    // A proxy variable that cannot be used is the user's to fix (exit 2), not a failure per sample.
    proxyFor(cfg.baseUrl || "https://api.openai.com/v1");
    this.client = new OpenAI({
      apiKey,
      baseURL: cfg.baseUrl,
      maxRetries: 0,
      timeout: cfg.timeoutS * 1000,
      defaultHeaders: cfg.headers,
      fetch: createHttpFetch(),
    });
  }

  async complete(req: ChatRequest, signal: AbortSignal): Promise<ProviderAnswer> {
    const body: Record<string, unknown> = { ...req.extra_body, model: req.model, messages: req.messages, ...req.params };
    if (req.json_schema) body.response_format = { type: "json_schema", json_schema: { name: "answer", schema: req.json_schema, strict: true } };
    let data: OpenAI.Chat.Completions.ChatCompletion;
    let requestId: string | null;
    let limits: StatedLimits | undefined;
    // The SDK adds an abort listener to the signal it is given and never removes it. Given the
    // build's one signal, that is a listener (about 1 KB) kept per request for the whole build; a
    // signal per request that follows the build's is dropped with the request.
    const own = new AbortController();
    const follow = () => own.abort(signal.reason);
    if (signal.aborted) follow();
    else signal.addEventListener("abort", follow, { once: true });
    try {
      const r = await this.client.chat.completions
        .create(body as unknown as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming, { signal: own.signal })
        .withResponse();
      data = r.data;
      requestId = r.request_id;
      limits = statedLimits(r.response.headers);
    } catch (err) {
      throw toRequestError(err);
    } finally {
      signal.removeEventListener("abort", follow);
    }
    const choice = data?.choices?.[0];
    if (!choice || typeof choice.message?.content !== "string") {
      throw new RequestError("malformed answer: no choices[0].message.content", true);
    }
    return {
      text: choice.message.content,
      finishReason: choice.finish_reason ?? "unknown",
      usage: data.usage ? { input: data.usage.prompt_tokens, output: data.usage.completion_tokens } : undefined,
      model: data.model,
      fingerprint: data.system_fingerprint ?? undefined,
      requestId: requestId ?? undefined,
      limits,
    };
  }
}

/** Map the SDK's errors to retryable or final, with the server's retry-after where it gave one. */
export function toRequestError(err: unknown): RequestError {
  if (err instanceof OpenAI.APIUserAbortError) return new RequestError("aborted", false);
  if (err instanceof OpenAI.APIConnectionTimeoutError) return new RequestError("timed out", true);
  if (err instanceof OpenAI.APIConnectionError)
    return new RequestError(`connection failed: ${err.cause instanceof Error ? err.cause.message : err.message}`, true);
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    const status = err.status;
    const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
    const msg = (err.error as { message?: string } | undefined)?.message ?? err.message;
    return new RequestError(`HTTP ${status}: ${msg}`, retryable, status, retryAfter(err.headers), statedLimits(err.headers));
  }
  if (err instanceof SyntaxError) return new RequestError(`malformed response body: ${err.message}`, true);
  if (err instanceof Error) return new RequestError(err.message, true);
  return new RequestError(String(err), true);
}

function retryAfter(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = Number(headers.get("retry-after-ms"));
  if (Number.isFinite(ms) && ms > 0) return ms;
  const raw = headers.get("retry-after");
  if (raw) {
    const s = Number(raw);
    if (Number.isFinite(s)) return Math.max(0, s * 1000);
    const at = Date.parse(raw);
    if (Number.isFinite(at)) return Math.max(0, at - Date.now());
  }
  // x-ratelimit-reset-* is not a retry-after: it is when the whole limit is back (up to a
  // minute), not when the next request fits. The scheduler reads it with the other stated limits.
  return undefined;
}
