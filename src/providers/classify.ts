import type { EndpointProblem } from "./types.js";

/** The error object of an OpenAI-style error body: `{ error: { message, type, param, code } }`. */
export interface ErrorBody {
  message?: string;
  type?: string | null;
  param?: string | null;
  code?: string | null;
}

/** What of the request a classification may look at. */
export interface RequestShape {
  model: string;
  messages: { content: string }[];
}

/**
 * Whether an HTTP error concerns the whole endpoint (every request would get it) or only this
 * request. Only the first stops the build, so the rule leans towards "this request" where a
 * status is ambiguous: a 400 is about the request unless it names the step's response_format or
 * an unknown model; a 404 on the chat completions path is the endpoint's either way (an unknown
 * model, or a URL with nothing there), and the two get different advice.
 */
export function endpointProblem(status: number, body: ErrorBody, req: RequestShape): EndpointProblem | undefined {
  const code = body.code ?? "";
  const message = body.message ?? "";
  if (status === 401) return "auth";
  if (status === 402) return "quota";
  if (status === 403) return "forbidden";
  // OpenAI answers an exhausted quota with 429, like a rate limit, but waiting does not help.
  if (status === 429) return code === "insufficient_quota" || body.type === "insufficient_quota" ? "quota" : undefined;
  if (code === "model_not_found") return "model";
  if (status === 404 || status === 405) return namesUnknownModel(message, req) ? "model" : "path";
  if (status === 400 || status === 422) {
    // First: "'response_format' of type 'json_schema' is not supported with this model" is about the schema.
    if (rejectsResponseFormat(body, req)) return "schema";
    if (namesUnknownModel(message, req)) return "model";
  }
  return undefined;
}

/** "The model `x` does not exist", "model 'x' not found, try pulling it first", "Invalid model name". */
function namesUnknownModel(message: string, req: RequestShape): boolean {
  if (!/\bmodels?\b/i.test(message)) return false;
  const says = /not (be )?found|does not exist|doesn't exist|no such model|unknown model|invalid model|not a valid model/i.test(message);
  return says && (message.includes(req.model) || !mentionedByRequest(message, req));
}

/**
 * The step's json_schema (or another response_format) refused: OpenAI names it in `param`; other
 * servers only in the message, which may also quote the request's own text, so a word the
 * request itself contains proves nothing.
 */
function rejectsResponseFormat(body: ErrorBody, req: RequestShape): boolean {
  if (body.param && /^response_format\b/.test(body.param)) return true;
  const m = /response_format|json_schema|json schema|guided_json/i.exec(body.message ?? "");
  if (!m) return false;
  const word = m[0].toLowerCase();
  return !req.messages.some((msg) => msg.content.toLowerCase().includes(word));
}

function mentionedByRequest(message: string, req: RequestShape): boolean {
  // A message quoting a long stretch of the prompt is about the prompt.
  return req.messages.some((m) => m.content.length >= 24 && message.includes(m.content.slice(0, 24)));
}

/**
 * For an error thrown by fetch: what prevented the connection, in a few words, or undefined when
 * a connection was made (a reset or a broken body after the server accepted the request is the
 * server's answer going wrong, not an endpoint that cannot be reached).
 */
export function connectFailure(err: unknown): string | undefined {
  for (const e of causes(err)) {
    const code = String((e as { code?: unknown }).code ?? "");
    const what = CONNECT_CODES[code];
    if (what) return what;
    if (/^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_(GET|VERIFY)_|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|HOSTNAME_MISMATCH)/.test(code) || code === "EPROTO") {
      return `TLS failed: ${(e as Error).message}`;
    }
  }
  return undefined;
}

const CONNECT_CODES: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ENOTFOUND: "no such host (DNS lookup failed)",
  EAI_AGAIN: "DNS lookup failed (EAI_AGAIN)",
  EAI_FAIL: "DNS lookup failed (EAI_FAIL)",
  EAI_NONAME: "no such host (DNS lookup failed)",
  EHOSTUNREACH: "host unreachable",
  EHOSTDOWN: "host is down",
  ENETUNREACH: "network unreachable",
  ENETDOWN: "network is down",
  EADDRNOTAVAIL: "address not available",
  ETIMEDOUT: "connection timed out",
  UND_ERR_CONNECT_TIMEOUT: "connection timed out",
};

/** The error, its causes, and the errors an AggregateError (both address families refused) holds. */
function* causes(err: unknown, depth = 0): Generator<unknown> {
  if (!err || typeof err !== "object" || depth > 6) return;
  yield err;
  if (err instanceof AggregateError) for (const e of err.errors) yield* causes(e, depth + 1);
  yield* causes((err as { cause?: unknown }).cause, depth + 1);
}
