import { formatWithOptions } from "node:util";
import OpenAI from "openai";
import type { ModelConfig } from "../manifest/types.js";
import type { ChatRequest } from "../plan/request.js";
import { type Redact, redactor } from "../util/redact.js";
import { chatBody } from "./batch-format.js";
import { connectFailure, type ErrorBody, endpointProblem } from "./classify.js";
import { CANCEL, createHttpFetch, MAX_RESPONSE_BYTES, RESPONSE_TOO_LARGE, TRANSFER_STALLED } from "./http-fetch.js";
import { proxyFor } from "./proxy.js";
import { type StatedLimits, statedLimits } from "./rate-headers.js";
import { EndpointRefused, NoResponse, type Provider, type ProviderAnswer, RequestError } from "./types.js";

type LogLevel = "off" | "error" | "warn" | "info" | "debug";
const LOG_LEVELS = new Set<string>(["off", "error", "warn", "info", "debug"]);

/**
 * Any OpenAI-compatible chat endpoint (OpenAI, gateways, vLLM, llama.cpp, Ollama). The SDK's own
 * retries are off: the scheduler owns retries, so they never multiply.
 */
export class OpenAIProvider implements Provider {
  readonly offline = false;
  private readonly client: OpenAI;
  private readonly redact: Redact;

  /** `env` is the build's: where `OPENAI_LOG` is read (the SDK would read process.env). */
  constructor(cfg: ModelConfig, apiKey: string, env: NodeJS.ProcessEnv = process.env) {
    // A proxy variable that cannot be used is the user's to fix (exit 2), not a failure per sample.
    proxyFor(cfg.baseUrl || "https://api.openai.com/v1", env);
    this.redact = redactor([apiKey, ...Object.values(cfg.headers)]);
    this.client = openAIClient(cfg, apiKey, env, this.redact);
  }

  async complete(req: ChatRequest, signal: AbortSignal, opts: { timeoutMs?: number } = {}): Promise<ProviderAnswer> {
    if (req.api === "completions") return this.completeText(req, signal, opts);
    const body = chatBody(req);
    let data: unknown;
    let requestId: string | null;
    let contentType: string | null;
    let limits: StatedLimits | undefined;
    if (signal.aborted) throw new RequestError("aborted", false);
    const timeout = opts.timeoutMs === undefined ? undefined : Math.max(1, Math.ceil(opts.timeoutMs));
    try {
      const response = await this.client.chat.completions
        .create(body as unknown as OpenAI.Chat.Completions.ChatCompletionCreateParamsNonStreaming, requestOptions(signal, timeout))
        .asResponse();
      requestId = response.headers.get("x-request-id");
      contentType = response.headers.get("content-type");
      limits = statedLimits(response.headers);
      data = await parsedBody(response, contentType);
    } catch (err) {
      throw this.redacted(aborted(signal) ?? toRequestError(err, req, timeout ?? this.client.timeout));
    }
    try {
      return { ...readAnswer(data, contentType), requestId: requestId ?? undefined, limits };
    } catch (err) {
      throw this.redacted(err as RequestError);
    }
  }

  /** `api: completions`: POST /completions with the one prompt, for base models. */
  private async completeText(req: ChatRequest, signal: AbortSignal, opts: { timeoutMs?: number }): Promise<ProviderAnswer> {
    const body = { ...req.extra_body, model: req.model, prompt: req.messages.map((m) => m.content).join(""), ...req.params };
    if (signal.aborted) throw new RequestError("aborted", false);
    const timeout = opts.timeoutMs === undefined ? undefined : Math.max(1, Math.ceil(opts.timeoutMs));
    let response: Response;
    let data: unknown;
    try {
      response = await this.client.completions
        .create(body as unknown as OpenAI.Completions.CompletionCreateParamsNonStreaming, requestOptions(signal, timeout))
        .asResponse();
      data = await parsedBody(response, response.headers.get("content-type"));
    } catch (err) {
      throw this.redacted(aborted(signal) ?? toRequestError(err, req, timeout ?? this.client.timeout));
    }
    try {
      return {
        ...readTextAnswer(data, response.headers.get("content-type")),
        requestId: response.headers.get("x-request-id") ?? undefined,
        limits: statedLimits(response.headers),
      };
    } catch (err) {
      throw this.redacted(err as RequestError);
    }
  }

  private redacted(err: RequestError): RequestError {
    err.message = this.redact(err.message);
    return err;
  }
}

type RequestOptions = NonNullable<Parameters<OpenAI["chat"]["completions"]["create"]>[1]>;

/**
 * The caller's signal goes to the transport (see CANCEL), not to the SDK: the SDK would keep a
 * listener on it for every request. Without a signal of its own the SDK takes the abort for a
 * timeout, so complete() asks the signal itself (aborted()).
 */
function requestOptions(signal: AbortSignal, timeout: number | undefined): RequestOptions {
  return { fetchOptions: { [CANCEL]: signal } as RequestOptions["fetchOptions"], ...(timeout ? { timeout } : {}) };
}

function aborted(signal: AbortSignal): RequestError | undefined {
  return signal.aborted ? new RequestError("aborted", false) : undefined;
}

/**
 * The SDK's client for an endpoint, with the scheduler owning retries (`maxRetries: 0`).
 * `files`: the Batch API's client, whose file transfers stream through createHttpFetch (see its
 * TRANSFER) whatever SYNTHBUILD_TRANSPORT says: that switch measures chat requests, and only
 * createHttpFetch watches a transfer's progress and hands its body over as it arrives.
 */
export function openAIClient(cfg: ModelConfig, apiKey: string, env: NodeJS.ProcessEnv, redact: Redact, files = false): OpenAI {
  const level = env.OPENAI_LOG;
  return new OpenAI({
    apiKey,
    baseURL: cfg.baseUrl,
    maxRetries: 0,
    timeout: cfg.timeoutS * 1000,
    defaultHeaders: cfg.headers,
    // A redirect is reported, not followed (both transports): fetch would resend the POST (or,
    // on 301/302, turn it into a GET), up to 20 times in a loop; the address is the user's to fix.
    fetch: files ? createHttpFetch({ env, maxBodyBytes: MAX_RESPONSE_BYTES }) : transport(env, MAX_RESPONSE_BYTES),
    // The SDK logs with console.log (stdout, where --json must be alone); its log goes to
    // stderr instead, with every secret an endpoint may echo masked.
    logLevel: level && LOG_LEVELS.has(level) ? (level as LogLevel) : "warn",
    logger: stderrLogger(redact),
  });
}

/**
 * The `fetch` the SDK is given, proxied as the build's `env` says. SYNTHBUILD_TRANSPORT=undici is
 * the alternative `npm run bench -- transport` measures; its module (and undici) load only then.
 */
function transport(env: NodeJS.ProcessEnv, maxBodyBytes: number): typeof fetch {
  if (env.SYNTHBUILD_TRANSPORT !== "undici") return createHttpFetch({ env, maxBodyBytes });
  const undici = import("./undici-fetch.js").then((m) => m.createFetch({ env, maxBodyBytes }));
  return async (url, init) => (await undici)(url, init);
}

/**
 * A 200 response as an answer. A refusal and a stop by the endpoint's content filter are the
 * model's answers (the pipeline drops the sample with that reason; the cache keeps them, as they
 * were paid for): a refusal is given as its text with finish reason "refusal". Anything that is
 * not a chat completion fails the request with what it was instead.
 */
/**
 * A 2xx body read as the SDK's own parser reads it (`withResponse`): JSON when the media type says
 * so, else the text. The SDK still sends the request and turns every other status into its
 * error; skipping its parse skips a log record built per answer and the promises around it
 * (about 20 µs of CPU a request, measured at 64 in flight).
 */
async function parsedBody(response: Response, contentType: string | null): Promise<unknown> {
  if (response.status === 204) return null;
  const media = contentType?.split(";")[0]?.trim();
  if (media?.includes("application/json") || media?.endsWith("+json")) {
    if (response.headers.get("content-length") === "0") return undefined;
    return response.json();
  }
  return response.text();
}

export function readAnswer(data: unknown, contentType: string | null): Omit<ProviderAnswer, "requestId"> {
  if (typeof data === "string") {
    throw new RequestError(`the endpoint answered HTTP 200 with ${contentType || "no content type"}, not a chat completion: ${gist(data)}`, false);
  }
  if (!data || typeof data !== "object" || Array.isArray(data)) {
    throw new RequestError(`the endpoint answered HTTP 200 with ${JSON.stringify(data)?.slice(0, 60) ?? "nothing"}, not a chat completion`, true);
  }
  const completion = data as Partial<OpenAI.Chat.Completions.ChatCompletion> & { error?: { message?: string } };
  if (!Array.isArray(completion.choices)) {
    if (completion.error)
      throw new RequestError(
        `the endpoint answered HTTP 200 with an error: ${gist(String(completion.error.message ?? JSON.stringify(completion.error)))}`,
        true,
      );
    throw new RequestError("malformed answer: the response has no choices", true);
  }
  const choice = completion.choices[0];
  if (!choice) throw new RequestError("malformed answer: the response has no choices (choices: [])", true);
  const message = choice.message as { content?: unknown; refusal?: unknown; tool_calls?: unknown } | undefined;
  const meta = {
    usage: completion.usage ? { input: completion.usage.prompt_tokens, output: completion.usage.completion_tokens } : undefined,
    model: completion.model,
    fingerprint: completion.system_fingerprint ?? undefined,
  };
  if (typeof message?.refusal === "string" && message.refusal) return { text: message.refusal, finishReason: "refusal", ...meta };
  const finishReason = choice.finish_reason ?? "unknown";
  if (finishReason === "content_filter") return { text: typeof message?.content === "string" ? message.content : "", finishReason, ...meta };
  if (typeof message?.content !== "string") {
    const what = message?.tool_calls
      ? "tool calls instead of text"
      : message
        ? `message.content ${message.content === null ? "null" : typeof message.content}`
        : "no message";
    throw new RequestError(`malformed answer: ${what} (finish_reason ${finishReason})`, true);
  }
  return { text: message.content, finishReason, ...meta };
}

/** A 200 from /completions as an answer: `choices[0].text`; anything else fails the request, saying what it was. */
export function readTextAnswer(data: unknown, contentType: string | null): Omit<ProviderAnswer, "requestId"> {
  if (typeof data === "string")
    throw new RequestError(`the endpoint answered HTTP 200 with ${contentType || "no content type"}, not a completion: ${gist(data)}`, false);
  const c = data as Partial<OpenAI.Completions.Completion> | null;
  if (!c || typeof c !== "object" || !Array.isArray(c.choices)) throw new RequestError("malformed answer: the response has no choices", true);
  const choice = c.choices[0];
  if (!choice || typeof choice.text !== "string") throw new RequestError("malformed answer: choices[0].text is not a string", true);
  return {
    text: choice.text,
    finishReason: choice.finish_reason ?? "unknown",
    usage: c.usage ? { input: c.usage.prompt_tokens, output: c.usage.completion_tokens } : undefined,
    model: c.model,
    fingerprint: c.system_fingerprint ?? undefined,
  };
}

/**
 * Map the SDK's errors to retryable or final, with the server's retry-after where it gave one.
 * Errors that concern the whole endpoint (see classify.ts) are EndpointRefused; no response at
 * all is NoResponse.
 */
export function toRequestError(err: unknown, req?: ChatRequest, timeoutMs?: number): RequestError {
  if (err instanceof OpenAI.APIUserAbortError) return new RequestError("aborted", false);
  if (err instanceof OpenAI.APIConnectionTimeoutError)
    return new NoResponse(timeoutMs ? `timed out: no answer in ${fmtSeconds(timeoutMs)}` : "timed out", "timeout", "no answer");
  if (err instanceof OpenAI.APIConnectionError) {
    const cause = err.cause instanceof Error ? err.cause : undefined;
    if ((cause as { code?: string } | undefined)?.code === RESPONSE_TOO_LARGE) return new RequestError(cause!.message, false);
    // A file transfer that stopped moving: the endpoint is not answering, as for a timeout.
    if ((cause as { code?: string } | undefined)?.code === TRANSFER_STALLED) return new NoResponse(cause!.message, "timeout", "no answer");
    const message = `connection failed: ${cause ? cause.message : err.message}`;
    const what = connectFailure(err.cause);
    // The proxy that could not be reached is what to fix, not the endpoint behind it.
    const via = /\(via proxy [^)]+\)/.exec(message)?.[0];
    return what ? new NoResponse(message, "connect", via ? `${what} ${via}` : what) : new RequestError(message, true);
  }
  if (err instanceof OpenAI.APIError && err.status !== undefined) {
    const status = err.status;
    const body = (err.error ?? {}) as ErrorBody;
    const msg = gist(typeof body.message === "string" ? body.message : err.message.replace(/^\d{3} /, ""));
    if (status >= 300 && status < 400) {
      const to = err.headers?.get("location");
      return new RequestError(
        `the endpoint redirected ${to ? `to ${to} ` : ""}(HTTP ${status}) instead of answering; redirects are not followed: set model.base_url to the address it points to`,
        false,
        status,
      );
    }
    const problem = req ? endpointProblem(status, body, req) : undefined;
    if (problem) return new EndpointRefused(`HTTP ${status}: ${msg}`, problem, status);
    const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
    return new RequestError(`HTTP ${status}: ${msg}`, retryable, status, retryAfter(err.headers), statedLimits(err.headers));
  }
  if (err instanceof SyntaxError) return new RequestError(`malformed response body: ${err.message}`, true);
  if (err instanceof Error) return new RequestError(err.message, true);
  return new RequestError(String(err), true);
}

/** Error texts and bodies as one short line: an HTML page reduced to its title or text. */
function gist(text: string, max = 200): string {
  const title = /<title[^>]*>([^<]*)<\/title>/i.exec(text)?.[1];
  let t = title ?? text.replace(/<(script|style)[\s\S]*?<\/\1>/gi, " ").replace(/<[^>]+>/g, " ");
  t = t.replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}

function fmtSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s`;
}

/** The SDK's logger, writing to stderr through the redaction. */
function stderrLogger(redact: Redact) {
  const line =
    (level: string) =>
    (...args: unknown[]) =>
      process.stderr.write(`${redact(`openai ${level}: ${formatWithOptions({ colors: false, depth: 6 }, ...args)}`)}\n`);
  return { error: line("error"), warn: line("warn"), info: line("info"), debug: line("debug") };
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
