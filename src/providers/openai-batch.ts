import type OpenAI from "openai";
import { toFile } from "openai";
import type { ModelConfig } from "../manifest/types.js";
import type { ChatRequest } from "../plan/request.js";
import { type Redact, redactor } from "../util/redact.js";
import type { BatchView } from "./batch-format.js";
import { TRANSFER, TRANSFER_STALLED, type Transfer } from "./http-fetch.js";
import { openAIClient, readAnswer, toRequestError } from "./openai.js";
import { EndpointRefused, NoResponse, RequestError } from "./types.js";

/**
 * An upload may take its per-request timeout and this long a byte more: at 128 KiB/s (a slow
 * uplink) 200 MB still goes, in 26 minutes. A connection that takes nothing fails sooner, on the
 * transfer's stall (model.timeout_s without a byte taken).
 */
const UPLOAD_MS_PER_BYTE = 1000 / (128 * 1024);
/** The longest a timer waits (about 24.8 days); a longer one fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** One line of an output file is one chat completion (under 16 MiB, as direct answers): a longer one is a server gone wrong. */
const MAX_LINE_CHARS = 32 * 1024 * 1024;

type FetchOptions = NonNullable<Parameters<OpenAI["files"]["content"]>[1]>["fetchOptions"];

/** One line of an output or error file, read: an answer (a 200 whose body is a chat completion) or why there is none. */
export type BatchLineResult = { key: string; answer: ReturnType<typeof readAnswer> & { requestId?: string } } | { key: string; error: RequestError };

/**
 * The Files and Batches APIs of an OpenAI-compatible endpoint, through the SDK with the same client
 * the direct requests use (its fetch, redirect rule, proxy, key and redaction). Every error is a
 * RequestError, retryable or not as for a chat request.
 */
export class OpenAIBatches {
  private readonly client: OpenAI;
  private readonly redact: Redact;
  private readonly timeoutMs: number;
  /** File transfers are bound by their progress, not by one request's timeout (see http-fetch's TRANSFER). */
  private readonly transfer: FetchOptions;

  constructor(cfg: ModelConfig, apiKey: string, env: NodeJS.ProcessEnv = process.env) {
    this.redact = redactor([apiKey, ...Object.values(cfg.headers)]);
    this.client = openAIClient(cfg, apiKey, env, this.redact, true);
    this.timeoutMs = cfg.timeoutS * 1000;
    // The SDK passes its per-request fetchOptions through to fetch untouched, a symbol key too.
    this.transfer = { [TRANSFER]: { stallMs: this.timeoutMs } satisfies Transfer } as FetchOptions;
  }

  /**
   * Upload a JSONL input file; its id. `like`: one of its requests, so that a refusal that concerns
   * the whole endpoint (its key, no Files API at that address) is told as such (EndpointRefused).
   * Its time grows with its size (a 200 MB file does not go in model.timeout_s); it fails sooner
   * only if the connection stops taking bytes for model.timeout_s.
   */
  async upload(jsonl: string, name: string, like: ChatRequest, signal?: AbortSignal): Promise<string> {
    const bytes = Buffer.from(jsonl);
    const timeout = Math.min(MAX_TIMER_MS, Math.ceil(this.timeoutMs + bytes.byteLength * UPLOAD_MS_PER_BYTE));
    return this.call(
      async () => (await this.client.files.create({ file: await toFile(bytes, name), purpose: "batch" }, { signal, timeout, fetchOptions: this.transfer })).id,
      like,
      timeout,
    );
  }

  /** Delete an uploaded file (one synthbuild will not use). */
  async deleteFile(id: string, signal?: AbortSignal): Promise<void> {
    await this.call(async () => this.client.files.delete(id, { signal }));
  }

  async create(inputFileId: string, metadata: Record<string, string>, like: ChatRequest, signal?: AbortSignal): Promise<BatchView> {
    return this.call(
      async () =>
        view(
          await this.client.batches.create({ input_file_id: inputFileId, endpoint: "/v1/chat/completions", completion_window: "24h", metadata }, { signal }),
        ),
      like,
    );
  }

  /**
   * `like`: a request of the step, so that a refusal of the whole endpoint (its key, its project)
   * is an EndpointRefused. A 404 stays a plain error: it may be this batch's alone (unknown to the
   * endpoint), which `probe` tells from an endpoint with no Batches API.
   */
  async retrieve(id: string, signal?: AbortSignal, like?: ChatRequest): Promise<BatchView> {
    try {
      return await this.call(async () => view(await this.client.batches.retrieve(id, { signal })), like);
    } catch (err) {
      if (err instanceof EndpointRefused && err.status === 404) throw new RequestError(err.message, false, 404);
      throw err;
    }
  }

  /** One page of one batch: whether the Batches API answers at all (a refusal of the endpoint throws EndpointRefused). */
  async probe(like: ChatRequest, signal?: AbortSignal): Promise<void> {
    await this.call(async () => this.client.batches.list({ limit: 1 }, { signal }), like);
  }

  async cancel(id: string, signal?: AbortSignal): Promise<BatchView> {
    return this.call(async () => view(await this.client.batches.cancel(id, { signal })));
  }

  /** A batch created over this input file, if any: the one a build killed between create and its record made. */
  async findByInput(inputFileId: string, signal?: AbortSignal): Promise<BatchView | undefined> {
    return this.call(async () => {
      for await (const b of this.client.batches.list({ limit: 100 }, { signal })) if (b.input_file_id === inputFileId) return view(b);
      return undefined;
    });
  }

  /**
   * The lines of an output or error file, as they arrive: a file of many GB is never held whole,
   * and each line may be stored before the next is read. The download is bound by its progress
   * (model.timeout_s without a byte is a stall), not by its length. A failure while reading is a
   * RequestError like any call's (a stall: NoResponse), after the lines already yielded.
   */
  async *results(fileId: string, signal?: AbortSignal): AsyncGenerator<BatchLineResult> {
    const res = await this.call(async () => this.client.files.content(fileId, { signal, fetchOptions: this.transfer }));
    const lines = linesOf(res.body);
    for (;;) {
      let next: IteratorResult<string>;
      try {
        next = await lines.next();
      } catch (err) {
        throw this.redacted(readFailure(err, fileId));
      }
      if (next.done) return;
      const line = next.value;
      if (!line.trim()) continue;
      let result: BatchLineResult | undefined;
      try {
        result = this.line(line);
      } catch (err) {
        // A bad line is its own request's error, not the whole file's: when its custom_id can be
        // read, that request is asked again; when not, the request it was is found missing (and
        // is asked again too). Either way the other lines are taken.
        const key = /"custom_id"\s*:\s*"([^"\\]+)"/.exec(line)?.[1];
        if (key) result = { key, error: err as RequestError };
      }
      if (result) yield result;
    }
  }

  private line(text: string): BatchLineResult {
    let l: {
      custom_id?: unknown;
      response?: { status_code?: number; request_id?: string; body?: unknown } | null;
      error?: { code?: string; message?: string } | null;
    };
    try {
      l = JSON.parse(text);
    } catch {
      throw new RequestError(`the endpoint's batch file has a line that is not JSON: ${text.slice(0, 80)}`, true);
    }
    if (typeof l.custom_id !== "string") throw new RequestError("the endpoint's batch file has a line without a custom_id", true);
    const key = l.custom_id;
    const r = l.response;
    if (r && r.status_code === 200) {
      try {
        return { key, answer: { ...readAnswer(r.body, "application/json"), requestId: r.request_id } };
      } catch (err) {
        return { key, error: this.redacted(err as RequestError) };
      }
    }
    if (r && typeof r.status_code === "number") {
      const body = r.body as { error?: { message?: string } } | undefined;
      const status = r.status_code;
      const retryable = status === 408 || status === 409 || status === 429 || status >= 500;
      return { key, error: this.redacted(new RequestError(`HTTP ${status}: ${body?.error?.message ?? "no message"}`, retryable, status)) };
    }
    const e = l.error;
    // batch_expired, batch_cancelled: the line was never run, and may be run again.
    return { key, error: this.redacted(new RequestError(`${e?.code ?? "error"}: ${e?.message ?? "no message"}`, true)) };
  }

  private async call<T>(fn: () => Promise<T>, like?: ChatRequest, timeoutMs?: number): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RequestError) throw this.redacted(err);
      throw this.redacted(toRequestError(err, like, timeoutMs));
    }
  }

  private redacted(err: RequestError): RequestError {
    err.message = this.redact(err.message);
    return err;
  }
}

/**
 * The lines of a body as it arrives, decoded as UTF-8 (a character split between two chunks is
 * kept whole). Stopping early cancels the body, which closes its connection.
 */
async function* linesOf(body: ReadableStream<Uint8Array> | null): AsyncGenerator<string> {
  if (!body) return;
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let rest = "";
  let done = false;
  try {
    for (;;) {
      const chunk = await reader.read();
      if (chunk.done) break;
      const parts = (rest + decoder.decode(chunk.value, { stream: true })).split("\n");
      rest = parts.pop()!;
      if (rest.length > MAX_LINE_CHARS)
        throw new RequestError(
          `the endpoint's batch file has a line over ${MAX_LINE_CHARS / 1024 / 1024} Mi characters, far more than any chat completion: refused`,
          false,
        );
      for (const p of parts) yield p;
    }
    done = true;
  } finally {
    if (!done) await reader.cancel().catch(() => {});
  }
  rest += decoder.decode();
  if (rest) yield rest;
}

/** A body that broke off while it was read, as the error a call gives. */
function readFailure(err: unknown, fileId: string): RequestError {
  if (err instanceof RequestError) return err;
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === "AbortError") return new RequestError("aborted", false);
  if (e?.code === TRANSFER_STALLED) return new NoResponse(`the download of ${fileId} ${e.message?.replace(/^the transfer /, "")}`, "timeout", "no answer");
  return new RequestError(`the download of ${fileId} broke off: ${e?.message ?? String(err)}`, true);
}

function view(b: OpenAI.Batches.Batch): BatchView {
  return {
    id: b.id,
    status: b.status,
    inputFileId: b.input_file_id,
    outputFileId: b.output_file_id ?? undefined,
    errorFileId: b.error_file_id ?? undefined,
    counts: { total: b.request_counts?.total ?? 0, completed: b.request_counts?.completed ?? 0, failed: b.request_counts?.failed ?? 0 },
    errors: (b.errors?.data ?? []).map((e) => `${e.code ?? "error"}${e.line != null ? ` (line ${e.line})` : ""}: ${e.message ?? ""}`),
    errorCodes: (b.errors?.data ?? []).map((e) => e.code ?? "error"),
  };
}
