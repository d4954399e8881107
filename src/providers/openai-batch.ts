import type OpenAI from "openai";
import { toFile } from "openai";
import type { ModelConfig } from "../manifest/types.js";
import type { ChatRequest } from "../plan/request.js";
import { type Redact, redactor } from "../util/redact.js";
import type { BatchView } from "./batch-format.js";
import { openAIClient, readAnswer, toRequestError } from "./openai.js";
import { RequestError } from "./types.js";

/** Output files are read whole: far above any chat completion, well under what a 200 MB input yields. */
const MAX_OUTPUT_BYTES = 2 ** 30;

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

  constructor(cfg: ModelConfig, apiKey: string, env: NodeJS.ProcessEnv = process.env) {
    this.redact = redactor([apiKey, ...Object.values(cfg.headers)]);
    this.client = openAIClient(cfg, apiKey, env, this.redact, MAX_OUTPUT_BYTES);
  }

  /**
   * Upload a JSONL input file; its id. `like`: one of its requests, so that a refusal that concerns
   * the whole endpoint (its key, no Files API at that address) is told as such (EndpointRefused).
   */
  async upload(jsonl: string, name: string, like: ChatRequest, signal?: AbortSignal): Promise<string> {
    return this.call(async () => (await this.client.files.create({ file: await toFile(Buffer.from(jsonl), name), purpose: "batch" }, { signal })).id, like);
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

  async retrieve(id: string, signal?: AbortSignal): Promise<BatchView> {
    return this.call(async () => view(await this.client.batches.retrieve(id, { signal })));
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

  /** The lines of an output or error file. */
  async results(fileId: string, signal?: AbortSignal): Promise<BatchLineResult[]> {
    const text = await this.call(async () => (await this.client.files.content(fileId, { signal })).text());
    const out: BatchLineResult[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      try {
        out.push(this.line(line));
      } catch (err) {
        // A bad line is its own request's error, not the whole file's: when its custom_id can be
        // read, that request is asked again; when not, the request it was is found missing (and
        // is asked again too). Either way the other lines are taken.
        const key = /"custom_id"\s*:\s*"([^"\\]+)"/.exec(line)?.[1];
        if (key) out.push({ key, error: err as RequestError });
      }
    }
    return out;
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

  private async call<T>(fn: () => Promise<T>, like?: ChatRequest): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof RequestError) throw this.redacted(err);
      throw this.redacted(toRequestError(err, like));
    }
  }

  private redacted(err: RequestError): RequestError {
    err.message = this.redact(err.message);
    return err;
  }
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
  };
}
