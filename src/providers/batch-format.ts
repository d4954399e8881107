import type { ChatRequest } from "../plan/request.js";

// Apart from openai-batch.ts, which imports the SDK: the batch runner is on every command's static
// import graph, and importing these from there made each start-up (`--help` included) load and
// evaluate the openai SDK, which only a command that sends a request needs.

/** The Batch API's own limits on one input file (OpenAI: 50,000 requests, 200 MB). */
export const BATCH_MAX_LINES = 50_000;
export const BATCH_MAX_BYTES = 200_000_000;

export type BatchStatus = "validating" | "failed" | "in_progress" | "finalizing" | "completed" | "expired" | "cancelling" | "cancelled";

/** A batch as synthbuild reads it. */
export interface BatchView {
  id: string;
  status: BatchStatus;
  inputFileId: string;
  outputFileId?: string;
  errorFileId?: string;
  counts: { total: number; completed: number; failed: number };
  /** Why a batch failed validation. */
  errors: string[];
  /** The codes of those errors (`token_limit_exceeded`, `invalid_request`, ...). */
  errorCodes: string[];
}

/** A batch settles in one of these; the others are on the way there. */
export const SETTLED: ReadonlySet<BatchStatus> = new Set(["failed", "completed", "expired", "cancelled"]);

/** The body of a chat completion request: what is sent directly, and what a batch line holds. */
export function chatBody(req: ChatRequest): Record<string, unknown> {
  const body: Record<string, unknown> = { ...req.extra_body, model: req.model, messages: req.messages, ...req.params };
  if (req.json_schema) body.response_format = { type: "json_schema", json_schema: { name: "answer", schema: req.json_schema, strict: true } };
  return body;
}

/** A request as one line of a batch input file: the body the direct request sends, keyed by its cache key. */
export function batchLine(key: string, req: ChatRequest): string {
  return JSON.stringify({ custom_id: key, method: "POST", url: "/v1/chat/completions", body: chatBody(req) });
}
