/**
 * Deterministic OpenAI-compatible chat-completions server for end-to-end tests
 * and benchmarks.
 *
 * - Answers are a pure function of the request's canonical content (see
 *   `answerFor`), so a re-run of a build produces byte-identical outputs and
 *   tests can predict exactly what a given prompt yields.
 * - Faults (HTTP errors, connection resets, malformed bodies, hangs) can be
 *   injected per request, optionally only for prompts containing a substring.
 * - Limits as real gateways enforce them (see `rate-limits.ts`): rpm and tpm
 *   over the minute or over shorter windows, a cap on requests in flight, the
 *   limits stated in x-ratelimit-* headers, one limit shared by every client.
 * - Control endpoints (`/__control/*`) allow driving a server that runs in
 *   another process (see `main.ts`).
 *
 * Everything here is deliberately cheap per request: it is used as the
 * "provider" in throughput benchmarks, where it must add negligible overhead.
 */
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import { prng } from "../helpers/rng.js";
import { BatchServer } from "./batches.js";
import { Gateway } from "./rate-limits.js";

// ---------------------------------------------------------------------------
// Public types
// ---------------------------------------------------------------------------

export interface FaultRule {
  /**
   * - `status`: answer with `status` and an OpenAI-style error body.
   * - `reset`: destroy the socket without any response.
   * - `malformed`: 200 with `content-type: application/json` but a truncated,
   *   unparsable body (for `stream: true` requests: a broken SSE event).
   * - `malformed_content`: (extension) a well-formed 200 chat.completion whose
   *   message content is truncated JSON (as if a structured-output model
   *   misbehaved), finish_reason "stop".
   * - `hang`: never answer (until `close()`, or the client gives up).
   * - the answers that are not what they should be (see `BadAnswerKind`).
   */
  kind: "status" | "reset" | "malformed" | "malformed_content" | "hang" | BadAnswerKind;
  /** for kind "status": 429, 500, 400, 408... (default 500) */
  status?: number;
  /** how many matching requests it applies to; undefined = forever */
  times?: number;
  /** only requests whose concatenated message contents include this substring */
  match?: string;
  /** seconds -> `retry-after` header */
  retryAfter?: number;
  /** -> `retry-after-ms` header */
  retryAfterMs?: number;
  headers?: Record<string, string>;
  /**
   * JSON error body override; default {error:{message,type,param,code}} like OpenAI. Every
   * `{{api_key}}` in its strings becomes the key the request sent (endpoints that echo it).
   */
  body?: unknown;
  /** for kind "huge": the body's size in bytes (default 50 MB) */
  bytes?: number;
  /** for kind "redirect": where to (default: the request's own URL, a loop) */
  location?: string;
}

/**
 * 200 answers that are not what they should be:
 * - `refusal`: message.content null, message.refusal "I'm sorry, I can't help with that."
 * - `content_filter`: content "", finish_reason "content_filter".
 * - `empty`: content "", finish_reason "stop" (a model that stops at once).
 * - `empty_choices`: `choices: []`.
 * - `null_content`: content null and no refusal.
 * - `html`: an HTML page with status 200 (a captive portal, a web UI).
 * - `redirect`: 302 to `location` (default: the same URL, a redirect loop).
 * - `huge`: a 200 JSON body of `bytes` (default 50 MB), sent in chunks without a content-length.
 */
export type BadAnswerKind = "refusal" | "content_filter" | "empty" | "empty_choices" | "null_content" | "html" | "redirect" | "huge";
const BAD_ANSWER_KINDS: BadAnswerKind[] = ["refusal", "content_filter", "empty", "empty_choices", "null_content", "html", "redirect", "huge"];

export interface TestServerOptions {
  /** delay before answering each request (default 0) */
  latencyMs?: number;
  /** length of generated answers in words, not counting the "TEST ANSWER <hex>:" prefix (default 60) */
  answerWords?: number;
  /**
   * Answer each request anew, as a model sampling at temperature 1 does: the same body gets a
   * different text every time (still reproducible from the request's arrival number).
   */
  varyAnswers?: boolean;
  /** sliding-window requests-per-minute limit; beyond it answer 429 */
  rpm?: number;
  /** length of the rpm (and tpm) sliding "minute" (default 60 000 ms); mainly for tests that want the window to slide quickly */
  rpmWindowMs?: number;
  /** tokens per minute (prompt + max_tokens of each request, as OpenAI counts at admission); beyond it 429 */
  tpm?: number;
  /** enforce rpm and tpm over sliding windows this long, each allowing its share (OpenAI: 60,000 rpm may be enforced as 1,000 per second) */
  enforceOverMs?: number;
  /** more than this many requests in flight: 429 without retry-after */
  maxInFlight?: number;
  /** state the limits in x-ratelimit-{limit,remaining,reset}-{requests,tokens} headers (default true) */
  stateLimits?: boolean;
  /** with a rate refusal: retry-after and retry-after-ms (default), only whole seconds ("seconds"), or neither (false, as OpenAI often) */
  retryAfter?: boolean | "seconds";
  /** if set, chat/models requests without `Authorization: Bearer <apiKey>` get 401 */
  apiKey?: string;
  /** that 401 quotes the key it was given, as OpenAI's "Incorrect API key provided: sk-…" does (unmasked) */
  echoKey?: boolean;
  /** default 127.0.0.1 */
  host?: string;
  /** default 0 = ephemeral */
  port?: number;
  /** serve HTTPS with this key and certificate (PEM) instead of plain HTTP */
  tls?: { key: string; cert: string };
  /** the Batch API: how long each stage of a batch (validating, in_progress, finalizing) lasts (default 50 ms) */
  batchStepMs?: number;
}

export interface RecordedRequest {
  /** parsed JSON body (the raw text if it was not valid JSON; undefined while still being received) */
  body: any;
  headers: Record<string, string | string[] | undefined>;
  /** Date.now() at arrival */
  at: number;
  /** HTTP status sent; 0 while pending and for requests that never got a response (reset, hang) */
  status: number;
  /** the request's path (and query) */
  url?: string;
}

export interface TestServerStats {
  /** chat completion requests received */
  requests: number;
  /** chat completion requests answered with 200 and a real answer */
  answered: number;
  /** 429 responses sent: rate and in-flight refusals plus injected `status: 429` faults */
  refused429: number;
  /** requests to which an injected fault rule applied */
  faulted: number;
  maxInFlight: number;
  inFlight: number;
}

export interface TestServer {
  /** e.g. http://127.0.0.1:54321 */
  url: string;
  /** url + "/v1" */
  baseURL: string;
  /** every chat completion request received, in arrival order (including faulted ones) */
  requests: RecordedRequest[];
  stats(): TestServerStats;
  /** rules are checked in insertion order; the first matching rule with remaining `times` applies */
  inject(rule: FaultRule): void;
  clearFaults(): void;
  setLatency(ms: number): void;
  /** What the endpoint reports as the model that answered and its fingerprint, as a provider rolling out a new snapshot does (not cleared by reset). */
  setSnapshot(snapshot: { suffix?: string; fingerprint?: string }): void;
  /** clears requests, stats, faults and the rpm window; restores the latency given at start */
  reset(): void;
  /** also releases hung / delayed requests (destroys their sockets) */
  close(): Promise<void>;
  /** Stop listening for `ms` (every connection dropped, new ones refused: an endpoint that is down), then listen on the same port again. */
  refuseConnections(ms: number): Promise<void>;
  /** The Files and Batches APIs (see batches.ts): counters, line faults, expiry, the batches created. Its lines are not in `requests`. */
  batches: BatchServer;
}

// ---------------------------------------------------------------------------
// Deterministic answers
// ---------------------------------------------------------------------------

/** Fixed `created` timestamp (2024-07-18T00:00:00Z): responses must not depend on the clock. */
export const FIXED_CREATED = 1721260800;
const SNAPSHOT_SUFFIX = "-2024-07-18";
const DEFAULT_ANSWER_WORDS = 60;
/** how many words of the last user message are echoed at the start of the answer */
const ECHO_WORDS = 8;

/**
 * Top-level request keys that do not influence the generated content (transport
 * or bookkeeping options). Everything else — messages, model, temperature,
 * top_p, seed, max_tokens, response_format, tools, ... — is hashed.
 */
const NON_CONTENT_KEYS = new Set(["stream", "stream_options", "user", "metadata", "store", "service_tier", "n"]);

// A fixed vocabulary so answers read like (vaguely meaningful) prose rather than hex noise.
const VOCAB = (
  "the a of and to in is that it for on with as by at from this which be are was " +
  "model data sample answer question example system process result value method " +
  "simple clear useful careful quick small large early later often rarely always " +
  "river mountain garden window lantern harbor meadow forest library kitchen " +
  "engine signal pattern theory measure balance structure language number story " +
  "builds explains describes compares follows improves suggests returns shows " +
  "gentle bright quiet steady curious honest subtle broad precise practical " +
  "because although while when where however therefore instead perhaps usually " +
  "people teacher student writer reader engineer farmer traveler doctor artist " +
  "morning evening season journey question detail context reason choice step " +
  "first second final next every each several many few most " +
  "clearly briefly slowly carefully directly simply finally especially"
).split(" ");

/** Sorted-key, undefined-free JSON: two bodies differing only in key order serialize identically. */
function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    // JSON.stringify(undefined) is undefined; callers filter undefined out before we get here.
    return JSON.stringify(value) ?? "null";
  }
  if (Array.isArray(value)) return "[" + value.map(canonicalJson).join(",") + "]";
  const obj = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(obj).sort()) {
    if (obj[key] === undefined) continue;
    parts.push(JSON.stringify(key) + ":" + canonicalJson(obj[key]));
  }
  return "{" + parts.join(",") + "}";
}

/** Text of one message's `content`: a string, or an array of parts of which text parts count. */
function contentText(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content.map((p) => (p && typeof p === "object" && typeof (p as any).text === "string" ? (p as any).text : "")).join("");
  }
  return "";
}

function messagesOf(body: any): any[] {
  return body && typeof body === "object" && Array.isArray(body.messages) ? body.messages : [];
}

/** All message contents joined by "\n" (what `FaultRule.match` is tested against). */
export function concatenatedContent(body: any): string {
  return messagesOf(body)
    .map((m) => contentText(m?.content))
    .join("\n");
}

function lastUserText(body: any): string {
  const msgs = messagesOf(body);
  for (let i = msgs.length - 1; i >= 0; i--) {
    if (msgs[i]?.role === "user") return contentText(msgs[i].content);
  }
  return "";
}

function digestOf(body: any, choiceIndex: number): string {
  const content: Record<string, unknown> = {};
  if (body && typeof body === "object" && !Array.isArray(body)) {
    for (const [k, v] of Object.entries(body)) if (!NON_CONTENT_KEYS.has(k)) content[k] = v;
  }
  // Choice 0 hashes exactly the canonical content; further choices (n > 1) get a distinct suffix.
  const payload = canonicalJson(content) + (choiceIndex > 0 ? `#choice${choiceIndex}` : "");
  return createHash("sha256").update(payload).digest("hex");
}

/** "TEST ANSWER <8 hex>: <echo of the prompt> <deterministic prose>" with exactly `words` words after the prefix. */
function proseFor(hex: string, body: any, words: number): string {
  const rand = prng(parseInt(hex.slice(8, 16), 16) ^ parseInt(hex.slice(16, 24), 16));
  const out = lastUserText(body).split(/\s+/).filter(Boolean).slice(0, Math.min(ECHO_WORDS, words));
  // Mark where the echoed prompt ends so the answer still reads like sentences
  // (the mark is glued to the last word so word counts and substring checks are unaffected).
  if (out.length > 0 && out.length < words && !/[.!?:;,…]$/.test(out[out.length - 1]!)) out[out.length - 1] += "…";
  let sentenceLen = 0;
  let sentenceTarget = 6 + Math.floor(rand() * 9);
  while (out.length < words) {
    let w = VOCAB[Math.floor(rand() * VOCAB.length)]!;
    if (sentenceLen === 0) w = w[0]!.toUpperCase() + w.slice(1);
    sentenceLen++;
    if (sentenceLen >= sentenceTarget || out.length === words - 1) {
      w += ".";
      sentenceLen = 0;
      sentenceTarget = 6 + Math.floor(rand() * 9);
    }
    out.push(w);
  }
  return `TEST ANSWER ${hex.slice(0, 8)}: ${out.join(" ")}`;
}

/**
 * Fill a JSON schema with deterministic values so `json_schema` requests get a
 * conforming object. The full answer text goes into the first string slot;
 * other strings get short phrases. Supports the subset OpenAI strict mode uses
 * (object/array/string/number/integer/boolean/null, enum, const, anyOf/oneOf,
 * $ref into $defs/definitions).
 */
function fillSchema(schema: any, root: any, rand: () => number, state: { text: string | null }, depth: number): unknown {
  if (!schema || typeof schema !== "object" || depth > 12) return null;
  if (typeof schema.$ref === "string") {
    const m = /^#\/(\$defs|definitions)\/(.+)$/.exec(schema.$ref);
    const target = m ? root?.[m[1]!]?.[decodeURIComponent(m[2]!)] : schema.$ref === "#" ? root : undefined;
    return fillSchema(target, root, rand, state, depth + 1);
  }
  if ("const" in schema) return schema.const;
  if (Array.isArray(schema.enum) && schema.enum.length > 0) {
    return schema.enum[Math.floor(rand() * schema.enum.length)];
  }
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (Array.isArray(alternatives) && alternatives.length > 0) {
    const nonNull = alternatives.find((s: any) => s?.type !== "null") ?? alternatives[0];
    return fillSchema(nonNull, root, rand, state, depth + 1);
  }
  let type = schema.type;
  if (Array.isArray(type)) type = type.find((t: string) => t !== "null") ?? type[0];
  if (type === undefined) type = schema.properties ? "object" : schema.items ? "array" : "string";
  switch (type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [key, sub] of Object.entries<any>(schema.properties ?? {})) {
        out[key] = fillSchema(sub, root, rand, state, depth + 1);
      }
      return out;
    }
    case "array": {
      const min = typeof schema.minItems === "number" ? schema.minItems : 1;
      const max = typeof schema.maxItems === "number" ? schema.maxItems : Math.max(min, 3);
      const count = Math.max(min, Math.min(max, 2));
      const items: unknown[] = [];
      for (let i = 0; i < count; i++) items.push(fillSchema(schema.items ?? {}, root, rand, state, depth + 1));
      return items;
    }
    case "string": {
      if (state.text !== null) {
        const t = state.text;
        state.text = null;
        return t;
      }
      const n = 2 + Math.floor(rand() * 4);
      const ws: string[] = [];
      for (let i = 0; i < n; i++) ws.push(VOCAB[Math.floor(rand() * VOCAB.length)]!);
      return ws.join(" ");
    }
    case "integer": {
      const lo = typeof schema.minimum === "number" ? Math.ceil(schema.minimum) : 0;
      const hi = typeof schema.maximum === "number" ? Math.floor(schema.maximum) : lo + 100;
      return lo + Math.floor(rand() * (hi - lo + 1));
    }
    case "number": {
      const lo = typeof schema.minimum === "number" ? schema.minimum : 0;
      const hi = typeof schema.maximum === "number" ? schema.maximum : lo + 100;
      return Math.round((lo + rand() * (hi - lo)) * 100) / 100;
    }
    case "boolean":
      return rand() < 0.5;
    default:
      return null;
  }
}

function maxTokensOf(body: any): number | undefined {
  const v = body?.max_completion_tokens ?? body?.max_tokens;
  return typeof v === "number" && Number.isFinite(v) && v >= 1 ? Math.floor(v) : undefined;
}

/** Whitespace-separated word count; also the "completion_tokens" the server reports. */
export function wordCount(text: string): number {
  let n = 0;
  for (const w of text.split(" ")) if (w !== "") n++;
  return n;
}

function generate(body: any, answerWords: number, choiceIndex: number): { text: string; finish_reason: "stop" | "length" } {
  const hex = digestOf(body, choiceIndex);
  const prose = proseFor(hex, body, Math.max(0, Math.floor(answerWords)));
  let text = prose;
  const rf = body?.response_format;
  if (rf?.type === "json_object") {
    text = JSON.stringify({ answer: prose });
  } else if (rf?.type === "json_schema") {
    const schema = rf.json_schema?.schema;
    const rand = prng(parseInt(hex.slice(24, 32), 16));
    const filled = schema ? fillSchema(schema, schema, rand, { text: prose }, 0) : null;
    text = JSON.stringify(filled !== null && typeof filled === "object" ? filled : { answer: prose });
  }
  const limit = maxTokensOf(body);
  if (limit !== undefined) {
    const words = text.split(" ").filter((w) => w !== "");
    if (words.length > limit) return { text: words.slice(0, limit).join(" "), finish_reason: "length" };
  }
  return { text, finish_reason: "stop" };
}

/**
 * The pure deterministic answer function: exactly the `choices[0].message.content`
 * and `finish_reason` the server returns for this request body.
 *
 * The text is `TEST ANSWER <first 8 hex of sha256(canonical body)>: ` followed by
 * `answerWords` words: up to the first 8 words of the last user message, then
 * prose from a fixed vocabulary seeded by the digest. For `response_format`
 * json_object it is `{"answer": <that text>}`; for json_schema an object
 * conforming to the schema (the text in its first string field). `max_tokens` /
 * `max_completion_tokens` cuts the (final) content to that many words with
 * finish_reason "length" — just as a real model may emit truncated JSON.
 */
export function answerFor(body: any, answerWords: number = DEFAULT_ANSWER_WORDS): { text: string; finish_reason: "stop" | "length" } {
  return generate(body, answerWords, 0);
}

/** ≈ ceil(chars / 4) over all message contents. */
export function promptTokensFor(body: any): number {
  let chars = 0;
  for (const m of messagesOf(body)) chars += contentText(m?.content).length;
  return Math.ceil(chars / 4);
}

function snapshotModel(model: unknown): string {
  const m = typeof model === "string" && model !== "" ? model : "unknown-model";
  // Already a dated snapshot (e.g. "gpt-4o-mini-2024-07-18")? Leave it alone.
  return /-\d{4}-\d{2}-\d{2}$/.test(m) ? m : m + SNAPSHOT_SUFFIX;
}

// ---------------------------------------------------------------------------
// HTTP helpers
// ---------------------------------------------------------------------------

type Res = http.ServerResponse;
type Headers = Record<string, string | number>;

const MAX_BODY_BYTES = 32 * 1024 * 1024;

function sendJson(res: Res, status: number, payload: unknown, headers: Headers = {}): void {
  if (res.destroyed || res.writableEnded) return;
  const data = JSON.stringify(payload);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(data),
    ...headers,
  });
  res.end(data);
}

function errorBody(status: number, message?: string): { error: { message: string; type: string; param: null; code: string | null } } {
  let type = "invalid_request_error";
  let code: string | null = null;
  if (status === 401) code = "invalid_api_key";
  else if (status === 404) code = "not_found";
  else if (status === 408) type = "timeout";
  else if (status === 429) {
    type = "requests";
    code = "rate_limit_exceeded";
  } else if (status >= 500) type = "server_error";
  return {
    error: { message: message ?? `Injected ${status} fault (synthbuild test server)`, type, param: null, code },
  };
}

function bearerOf(record: RecordedRequest): string {
  const auth = record.headers.authorization;
  return typeof auth === "string" ? auth.replace(/^Bearer\s+/i, "") : "";
}

/** `{{api_key}}` in every string of a JSON value replaced by the key (see FaultRule.body). */
function withKey(value: unknown, key: string): unknown {
  if (typeof value === "string") return value.split("{{api_key}}").join(key);
  if (Array.isArray(value)) return value.map((v) => withKey(v, key));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, withKey(v, key)]));
  return value;
}

/** A valid chat.completion whose content is `bytes` long, written in 64 KiB chunks (no content-length: the client must count). */
function sendHuge(res: Res, bytes: number, headers: Headers): void {
  const head =
    '{"id":"chatcmpl-huge","object":"chat.completion","created":1721260800,"model":"test-model","choices":[{"index":0,"message":{"role":"assistant","content":"';
  const tail = '"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}';
  res.writeHead(200, { "content-type": "application/json", ...headers });
  res.write(head);
  const chunk = "x".repeat(64 * 1024);
  let left = Math.max(0, bytes - head.length - tail.length);
  const pump = () => {
    while (left > 0 && !res.destroyed) {
      const piece = left >= chunk.length ? chunk : chunk.slice(0, left);
      left -= piece.length;
      if (!res.write(piece)) return void res.once("drain", pump);
    }
    if (!res.destroyed) res.end(tail);
  };
  pump();
}

function readBody(req: http.IncomingMessage): Promise<string | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) tooLarge = true;
      else chunks.push(c);
    });
    req.on("end", () => resolve(tooLarge ? null : Buffer.concat(chunks).toString("utf8")));
    // Client went away mid-body: resolve null; the response is moot anyway.
    req.on("error", () => resolve(null));
  });
}

const FAULT_KINDS = new Set<FaultRule["kind"]>(["status", "reset", "malformed", "malformed_content", "hang", ...BAD_ANSWER_KINDS]);

function validateRule(rule: any): string | null {
  if (!rule || typeof rule !== "object") return "fault rule must be an object";
  if (!FAULT_KINDS.has(rule.kind)) return `unknown fault kind ${JSON.stringify(rule.kind)}`;
  if (rule.kind === "status" && rule.status !== undefined && !(Number.isInteger(rule.status) && rule.status >= 100 && rule.status <= 599)) {
    return "status must be an integer HTTP status";
  }
  if (rule.times !== undefined && !(Number.isInteger(rule.times) && rule.times >= 0)) return "times must be a non-negative integer";
  if (rule.match !== undefined && typeof rule.match !== "string") return "match must be a string";
  return null;
}

const MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "test-model"];

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const answerWords = opts.answerWords ?? DEFAULT_ANSWER_WORDS;
  let snapshot: { suffix?: string; fingerprint?: string } = {};
  const initialLatency = opts.latencyMs ?? 0;
  const gateway = new Gateway({
    rpm: opts.rpm,
    tpm: opts.tpm,
    minuteMs: opts.rpmWindowMs,
    enforceOverMs: opts.enforceOverMs,
    maxInFlight: opts.maxInFlight,
    stateLimits: opts.stateLimits,
    retryAfter: opts.retryAfter,
  });

  let latencyMs = initialLatency;
  let seq = 0;
  const requests: RecordedRequest[] = [];
  const counters = { requests: 0, answered: 0, refused429: 0, faulted: 0, maxInFlight: 0 };
  let inFlight = 0;
  let rules: Array<{ rule: FaultRule; remaining: number }> = [];

  // Latency timers of waiting requests: close() must clear them so the process can exit.
  const pendingTimers = new Set<NodeJS.Timeout>();

  const batches = new BatchServer(
    { stepMs: opts.batchStepMs },
    (body, n) => completionPayload(body, n),
    concatenatedContent,
    (res, status, payload, headers) => sendJson(res, status, payload, headers),
  );

  function stats(): TestServerStats {
    return { ...counters, inFlight };
  }

  function inject(rule: FaultRule): void {
    const problem = validateRule(rule);
    if (problem) throw new Error(problem);
    rules.push({ rule: { ...rule }, remaining: rule.times ?? Infinity });
  }

  function reset(): void {
    requests.length = 0;
    counters.requests = counters.answered = counters.refused429 = counters.faulted = 0;
    // In-flight requests are real and still running; the max restarts from them.
    counters.maxInFlight = inFlight;
    rules = [];
    gateway.reset();
    seq = 0;
    latencyMs = initialLatency;
    batches.reset();
  }

  function takeFault(body: any): FaultRule | undefined {
    if (rules.length === 0) return undefined;
    let text: string | undefined;
    for (const entry of rules) {
      if (entry.remaining <= 0) continue;
      if (entry.rule.match !== undefined) {
        text ??= concatenatedContent(body);
        if (!text.includes(entry.rule.match)) continue;
      }
      entry.remaining--;
      return entry.rule;
    }
    return undefined;
  }

  /** The chat.completion object for request number `n` (all `n` choices of the body). */
  function completionPayload(body: any, n: number): any {
    const count = Number.isInteger(body.n) && body.n > 1 ? Math.min(body.n, 16) : 1;
    const choices = [];
    for (let i = 0; i < count; i++) choices.push(generate(body, answerWords, opts.varyAnswers ? n * 16 + i : i));
    const completionTokens = choices.reduce((s, c) => s + wordCount(c.text), 0);
    const promptTokens = promptTokensFor(body);
    return {
      id: `chatcmpl-test-${n}`,
      object: "chat.completion",
      created: FIXED_CREATED,
      model: snapshot.suffix ? `${String(body.model)}${snapshot.suffix}` : snapshotModel(body.model),
      system_fingerprint: snapshot.fingerprint ?? "fp_test",
      service_tier: "default",
      choices: choices.map((c, index) => ({
        index,
        message: { role: "assistant", content: c.text, refusal: null, annotations: [] },
        logprobs: null,
        finish_reason: c.finish_reason,
      })),
      usage: {
        prompt_tokens: promptTokens,
        completion_tokens: completionTokens,
        total_tokens: promptTokens + completionTokens,
      },
    };
  }

  /** Server-sent events in the shape of OpenAI's chat.completion.chunk stream. */
  function sendStream(res: Res, body: any, n: number, headers: Headers): void {
    const payload = completionPayload(body, n);
    const base = {
      id: payload.id,
      object: "chat.completion.chunk",
      created: payload.created,
      model: payload.model,
      system_fingerprint: payload.system_fingerprint,
    };
    const events: string[] = [];
    const push = (obj: unknown) => events.push(`data: ${JSON.stringify(obj)}\n\n`);
    for (const choice of payload.choices) {
      const index = choice.index;
      push({ ...base, choices: [{ index, delta: { role: "assistant", content: "", refusal: null }, logprobs: null, finish_reason: null }] });
      // Pieces of a few words each, keeping the separating spaces so they concatenate back exactly.
      const pieces = (choice.message.content as string).match(/(?:\S+\s*){1,4}|\s+/g) ?? [];
      for (const piece of pieces) push({ ...base, choices: [{ index, delta: { content: piece }, logprobs: null, finish_reason: null }] });
      push({ ...base, choices: [{ index, delta: {}, logprobs: null, finish_reason: choice.finish_reason }] });
    }
    if (body.stream_options?.include_usage) push({ ...base, choices: [], usage: payload.usage });
    events.push("data: [DONE]\n\n");
    const data = events.join("");
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "content-length": Buffer.byteLength(data),
      ...headers,
    });
    res.end(data);
  }

  function applyFault(rule: FaultRule, res: Res, record: RecordedRequest, body: any, n: number, reqHeaders: Headers): void {
    counters.faulted++;
    switch (rule.kind) {
      case "status": {
        const status = rule.status ?? 500;
        const headers: Headers = { ...reqHeaders, ...(rule.headers ?? {}) };
        if (rule.retryAfter !== undefined) headers["retry-after"] = String(rule.retryAfter);
        if (rule.retryAfterMs !== undefined) headers["retry-after-ms"] = String(rule.retryAfterMs);
        if (status === 429) counters.refused429++;
        record.status = status;
        sendJson(res, status, rule.body === undefined ? errorBody(status) : withKey(rule.body, bearerOf(record)), headers);
        return;
      }
      case "reset":
        res.socket?.destroy();
        return;
      case "hang":
        // Never answer: the socket stays open until the client gives up or
        // close() destroys it (closeAllConnections also ends active sockets).
        return;
      case "malformed": {
        record.status = 200;
        if (body.stream === true) {
          const data = `data: {"id":"chatcmpl-test-${n}","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"TEST ANS\n\n`;
          res.writeHead(200, { "content-type": "text/event-stream; charset=utf-8", "content-length": Buffer.byteLength(data), ...reqHeaders });
          res.end(data);
          return;
        }
        const full = JSON.stringify(completionPayload(body, n));
        sendRaw(res, 200, full.slice(0, Math.max(1, Math.floor(full.length / 2))), reqHeaders);
        return;
      }
      case "refusal":
      case "content_filter":
      case "empty":
      case "empty_choices":
      case "null_content":
      case "html":
      case "redirect":
      case "huge":
        sendBadAnswer(rule, res, record, body, n, reqHeaders);
        return;
      case "malformed_content": {
        record.status = 200;
        const payload = completionPayload(body, n);
        for (const c of payload.choices) {
          const content = c.message.content as string;
          const json = content.startsWith("{") ? content : JSON.stringify({ answer: content });
          c.message.content = json.slice(0, Math.max(1, Math.floor(json.length / 2)));
          c.finish_reason = "stop";
        }
        sendJson(res, 200, payload, reqHeaders);
        return;
      }
    }
  }

  function sendRaw(res: Res, status: number, data: string, headers: Headers): void {
    if (res.destroyed || res.writableEnded) return;
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...headers });
    res.end(data);
  }

  function authorized(req: http.IncomingMessage): boolean {
    return opts.apiKey === undefined || req.headers.authorization === `Bearer ${opts.apiKey}`;
  }

  function unauthorized(res: Res, headers: Headers = {}, given?: string): void {
    const quoted = opts.echoKey && given ? `: ${given}` : " (synthbuild test server)";
    sendJson(
      res,
      401,
      errorBody(401, `Incorrect API key provided${quoted}. You can find your API key at https://platform.openai.com/account/api-keys.`),
      headers,
    );
  }

  /** See BadAnswerKind. */
  function sendBadAnswer(rule: FaultRule, res: Res, record: RecordedRequest, body: any, n: number, headers: Headers): void {
    if (rule.kind === "redirect") {
      record.status = 302;
      res.writeHead(302, { location: rule.location ?? record.url ?? "/v1/chat/completions", "content-length": 0, ...headers });
      res.end();
      return;
    }
    record.status = 200;
    if (rule.kind === "html") {
      const page =
        "<!doctype html><html><head><title>Sign in to the guest network</title></head><body><h1>Welcome</h1><p>Accept the terms to continue.</p></body></html>";
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "content-length": Buffer.byteLength(page), ...headers });
      res.end(page);
      return;
    }
    if (rule.kind === "huge") {
      sendHuge(res, rule.bytes ?? 50_000_000, headers);
      return;
    }
    const payload = completionPayload(body, n);
    const choice = payload.choices[0];
    if (rule.kind === "empty_choices") payload.choices = [];
    else if (rule.kind === "refusal") Object.assign(choice.message, { content: null, refusal: "I'm sorry, I can't help with that." });
    else if (rule.kind === "null_content") choice.message.content = null;
    else {
      choice.message.content = "";
      choice.finish_reason = rule.kind === "content_filter" ? "content_filter" : "stop";
    }
    if (rule.kind !== "empty_choices") payload.usage.completion_tokens = rule.kind === "refusal" ? 9 : 0;
    payload.usage.total_tokens = payload.usage.prompt_tokens + payload.usage.completion_tokens;
    sendJson(res, 200, payload, headers);
  }

  /** /v1/completions, as base models are served: a prompt string in, `choices[].text` out. */
  function textCompletionPayload(body: any, n: number): any {
    const chat = completionPayload(body, n);
    return {
      id: `cmpl-test-${n}`,
      object: "text_completion",
      created: chat.created,
      model: chat.model,
      system_fingerprint: chat.system_fingerprint,
      choices: chat.choices.map((c: any) => ({ index: c.index, text: c.message.content, logprobs: null, finish_reason: c.finish_reason })),
      usage: chat.usage,
    };
  }

  async function handleChat(req: http.IncomingMessage, res: Res, api: "chat" | "completions" = "chat"): Promise<void> {
    const n = ++seq;
    counters.requests++;
    inFlight++;
    if (inFlight > counters.maxInFlight) counters.maxInFlight = inFlight;
    const record: RecordedRequest = { body: undefined, headers: req.headers, at: Date.now(), status: 0, url: req.url };
    requests.push(record);
    // 'close' fires exactly once per response: after it finished, or when the
    // connection died first (reset, client timeout, close()).
    res.once("close", () => {
      inFlight--;
    });

    const reqHeaders: Headers = { "x-request-id": `req_test_${n}` };
    const raw = await readBody(req);
    if (raw === null) {
      record.status = 413;
      sendJson(res, 413, errorBody(413, "Request body too large or aborted."), reqHeaders);
      return;
    }
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      record.body = raw;
      record.status = 400;
      sendJson(res, 400, errorBody(400, "We could not parse the JSON body of your request."), reqHeaders);
      return;
    }
    record.body = body;
    if (api === "completions" && body && typeof body === "object") {
      if (typeof body.prompt !== "string") {
        record.status = 400;
        sendJson(res, 400, errorBody(400, "Missing required parameter: 'prompt' (a string)."), reqHeaders);
        return;
      }
      // The rest of the server reads a chat body: the prompt is its one user message.
      body = { ...body, messages: [{ role: "user", content: body.prompt }] };
    }

    if (!authorized(req)) {
      record.status = 401;
      unauthorized(res, reqHeaders, bearerOf(record));
      return;
    }
    if (!body || typeof body !== "object" || !Array.isArray(body.messages) || body.messages.length === 0) {
      record.status = 400;
      sendJson(res, 400, errorBody(400, "Missing required parameter: 'messages'."), reqHeaders);
      return;
    }
    if (typeof body.model !== "string" || body.model === "") {
      record.status = 400;
      sendJson(res, 400, errorBody(400, "Missing required parameter: 'model'."), reqHeaders);
      return;
    }

    // Injected faults take precedence over everything else and do not consume rpm budget.
    const rule = takeFault(body);
    if (rule) {
      applyFault(rule, res, record, body, n, reqHeaders);
      return;
    }

    const admitted = gateway.admit(Date.now(), promptTokensFor(body) + (maxTokensOf(body) ?? answerWords));
    if ("message" in admitted) {
      counters.refused429++;
      record.status = 429;
      sendJson(res, 429, errorBody(429, admitted.message), { ...reqHeaders, ...admitted.headers });
      return;
    }
    res.once("close", admitted.release);

    const answer = () => {
      if (res.destroyed || res.writableEnded) return;
      counters.answered++;
      record.status = 200;
      const headers = { ...reqHeaders, ...gateway.stated(Date.now()), "openai-processing-ms": latencyMs };
      if (api === "completions") sendJson(res, 200, textCompletionPayload(body, n), headers);
      else if (body.stream === true) sendStream(res, body, n, headers);
      else sendJson(res, 200, completionPayload(body, n), headers);
    };
    if (latencyMs <= 0) {
      answer();
      return;
    }
    const timer = setTimeout(() => {
      pendingTimers.delete(timer);
      answer();
    }, latencyMs);
    pendingTimers.add(timer);
    // Client gave up (e.g. its own timeout): drop the timer instead of answering a dead socket.
    res.once("close", () => {
      clearTimeout(timer);
      pendingTimers.delete(timer);
    });
  }

  async function handleControl(req: http.IncomingMessage, res: Res, path: string, query: string): Promise<void> {
    const method = req.method ?? "GET";
    let body: any;
    if (method === "POST" || method === "PUT") {
      const raw = await readBody(req);
      try {
        body = raw ? JSON.parse(raw) : {};
      } catch {
        return sendJson(res, 400, { error: { message: "invalid JSON", type: "invalid_request_error", param: null, code: null } });
      }
    }
    const route = `${method} ${path}`;
    switch (route) {
      case "GET /__control/stats":
        return sendJson(res, 200, { ...stats(), latencyMs, faults: rules.filter((r) => r.remaining > 0).length, batches: batches.counts });
      case "GET /__control/requests": {
        // ?since=N returns requests[N..]: lets a remote test fetch only what it caused.
        const since = Number(new URLSearchParams(query).get("since") ?? 0) || 0;
        return sendJson(res, 200, { total: requests.length, requests: requests.slice(since) });
      }
      case "POST /__control/faults": {
        const problem = validateRule(body);
        if (problem) return sendJson(res, 400, { error: { message: problem, type: "invalid_request_error", param: null, code: null } });
        inject(body as FaultRule);
        return sendJson(res, 200, { ok: true, faults: rules.length });
      }
      case "DELETE /__control/faults":
        rules = [];
        return sendJson(res, 200, { ok: true });
      case "POST /__control/reset":
        reset();
        return sendJson(res, 200, { ok: true });
      case "POST /__control/batch-step": {
        const ms = body?.ms;
        if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
          return sendJson(res, 400, { error: { message: "body must be {ms: number >= 0}", type: "invalid_request_error", param: null, code: null } });
        }
        batches.setStepMs(ms);
        return sendJson(res, 200, { ok: true });
      }
      case "POST /__control/latency": {
        const ms = body?.ms;
        if (typeof ms !== "number" || !Number.isFinite(ms) || ms < 0) {
          return sendJson(res, 400, { error: { message: "body must be {ms: number >= 0}", type: "invalid_request_error", param: null, code: null } });
        }
        latencyMs = ms;
        return sendJson(res, 200, { ok: true, latencyMs });
      }
      default:
        return notFound(res, method, path);
    }
  }

  function notFound(res: Res, method: string, path: string): void {
    sendJson(res, 404, {
      error: { message: `Unknown route: ${method} ${path} (synthbuild test server)`, type: "invalid_request_error", param: null, code: "unknown_url" },
    });
  }

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const url = req.url ?? "/";
    const q = url.indexOf("?");
    const path = q === -1 ? url : url.slice(0, q);
    const query = q === -1 ? "" : url.slice(q + 1);
    const method = req.method ?? "GET";
    let work: Promise<void> | void;
    if (method === "POST" && (path === "/v1/chat/completions" || path === "/chat/completions")) {
      work = handleChat(req, res);
    } else if (method === "POST" && (path === "/v1/completions" || path === "/completions")) {
      work = handleChat(req, res, "completions");
    } else if (/^\/(v1\/)?(files|batches)(\/|$)/.test(path)) {
      if (!authorized(req)) {
        req.resume();
        return unauthorized(res);
      }
      const body = () => readBody(req).then((t) => (t === null ? null : Buffer.from(t, "utf8")));
      const handled = batches.handle(req, res, path, body);
      if (!handled) req.resume();
      work = handled ? undefined : notFound(res, method, path);
    } else if (path.startsWith("/__control/")) {
      work = handleControl(req, res, path, query);
    } else if (method === "GET" && (path === "/v1/models" || path === "/models")) {
      if (!authorized(req)) return unauthorized(res);
      work = sendJson(res, 200, {
        object: "list",
        data: MODELS.map((id) => ({ id, object: "model", created: FIXED_CREATED, owned_by: "synthbuild-test" })),
      });
    } else {
      req.resume(); // drain any body so the keep-alive connection stays usable
      work = notFound(res, method, path);
    }
    if (work) {
      work.catch((err) => {
        // A bug in the server must not crash the test process; surface it as a 500.
        if (!res.headersSent) sendJson(res, 500, errorBody(500, `test server error: ${String(err)}`));
        else res.destroy();
      });
    }
  };
  const server = opts.tls ? https.createServer({ ...opts.tls, noDelay: true }, handler) : http.createServer({ noDelay: true }, handler);

  // Clients (undici behind the openai SDK) keep connections alive and reuse
  // them; a server-side keep-alive timeout shorter than the client's leads to
  // "other side closed" races under load, so keep idle sockets for a minute.
  server.keepAliveTimeout = 60_000;
  // Must exceed keepAliveTimeout (Node requirement to avoid spurious 408s).
  server.headersTimeout = 61_000;
  // No cap on requests per keep-alive connection.
  server.maxRequestsPerSocket = 0;

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    // Large backlog: benchmarks open many connections at once.
    server.listen({ port: opts.port ?? 0, host: opts.host ?? "127.0.0.1", backlog: 4096 }, () => {
      server.off("error", reject);
      resolve();
    });
  });

  const addr = server.address() as AddressInfo;
  const host = addr.family === "IPv6" || addr.address.includes(":") ? `[${addr.address}]` : addr.address;
  const url = `${opts.tls ? "https" : "http"}://${host}:${addr.port}`;

  let closing: Promise<void> | undefined;
  let relisten: NodeJS.Timeout | undefined;
  async function refuseConnections(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
    relisten = setTimeout(() => {
      relisten = undefined;
      if (!closing) server.listen({ port: addr.port, host: opts.host ?? "127.0.0.1", backlog: 4096 });
    }, ms);
  }
  function close(): Promise<void> {
    clearTimeout(relisten);
    closing ??= new Promise<void>((resolve) => {
      for (const t of pendingTimers) clearTimeout(t);
      pendingTimers.clear();
      server.close(() => resolve());
      // Destroys every socket, idle keep-alive ones (which would otherwise keep
      // close() pending for keepAliveTimeout) as well as hung and delayed requests.
      server.closeAllConnections();
    });
    return closing;
  }

  return {
    url,
    baseURL: `${url}/v1`,
    requests,
    stats,
    inject,
    clearFaults: () => {
      rules = [];
    },
    setSnapshot: (next) => {
      snapshot = next;
    },
    setLatency: (ms: number) => {
      if (!(ms >= 0)) throw new Error(`latency must be >= 0, got ${ms}`);
      latencyMs = ms;
    },
    reset,
    close,
    refuseConnections,
    batches,
  };
}
