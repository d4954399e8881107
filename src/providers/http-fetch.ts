import { type Agent, Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { type Readable, Transform } from "node:stream";
import { urlToHttpOptions } from "node:url";
import {
  brotliDecompressSync,
  createBrotliDecompress,
  createGunzip,
  createInflate,
  createInflateRaw,
  gunzipSync,
  inflateRawSync,
  inflateSync,
} from "node:zlib";
import { type ProxyRoute, proxyFor } from "./proxy.js";

/**
 * The `fetch` the openai SDK is given: one request over node:http(s) keep-alive agents, the whole
 * body read, then handed over as a standard `Response`.
 *
 * Why not undici's fetch (Node's own): measured by `npm run bench -- transport` on 2026-12-03 (see
 * the README), it takes over twice the CPU a request (0.88 ms against 0.39 ms, client side, on web
 * streams this use does not need), so a cold build spends 30-40% more CPU and 20-50% more
 * memory, and at 0 ms latency, where CPU is the limit, takes about 40% longer. The SDK's
 * `fetch` option exists for exactly this; the SDK still builds every request and reads every response.
 *
 * It sends every request itself, so each goes where proxyFor, reading the build's `env`, says.
 * A redirect is never followed, whatever `redirect` asks: the response is the redirect (as with
 * `redirect: "manual"`), since a followed POST is resent, or on 301/302 turned into a GET, and
 * the address is the user's to fix. What it cannot send (a body that is not text or bytes, a URL
 * that is not http(s)) is refused, never handed to a fetch that ignores the proxy. Where it
 * answers, it answers as the global fetch would (statuses, headers, content codings, aborts),
 * which test/unit/http-fetch.test.ts checks case by case.
 *
 * A Files API transfer (see TRANSFER) is the one exception to "the whole body read": its body is
 * handed over as it arrives, so a multi-GB output file is never held whole.
 */
export function createHttpFetch(opts: { env: NodeJS.ProcessEnv; maxBodyBytes?: number }): typeof fetch {
  // The scheduler bounds concurrency; the agents only keep connections alive for reuse.
  const agents = { http: new HttpAgent({ keepAlive: true, maxSockets: Infinity }), https: new HttpsAgent({ keepAlive: true, maxSockets: Infinity }) };
  const routes = new Map<string, ProxyRoute | undefined>();
  const proxyAgents = new Map<string, Promise<Agent>>();
  /** Direct, or through the proxy the environment names for the URL (see proxyFor). */
  const agentFor = (url: string, secure: boolean): { agent: Agent | Promise<Agent>; via?: string } => {
    if (!routes.has(url)) routes.set(url, proxyFor(url, opts.env));
    const route = routes.get(url);
    if (!route) return { agent: secure ? agents.https : agents.http };
    const key = `${secure ? "https" : "http"} ${route.url.href} ${route.authorization ?? ""}`;
    let agent = proxyAgents.get(key);
    if (!agent) proxyAgents.set(key, (agent = proxyAgent(route, secure)));
    return { agent, via: route.label };
  };
  const httpFetch = (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    // A file upload (the Batch API's input file): the form is encoded as fetch encodes it, then
    // sent as bytes with the boundary fetch chose.
    if (init.body instanceof FormData) return formBytes(init).then((sent) => httpFetch(input, sent));
    const url = typeof input === "string" ? input : input instanceof URL ? input.href : undefined;
    const body = init.body;
    const secure = url?.startsWith("https:");
    if (url === undefined || !(secure || url.startsWith("http:"))) return Promise.reject(new TypeError(`not an http(s) URL: ${String(input)}`));
    if (body != null && typeof body !== "string" && !(body instanceof Uint8Array)) return Promise.reject(new TypeError("only a text or byte body can be sent"));
    if (init.signal?.aborted) return Promise.reject(abortReason(init.signal));
    const headers: Record<string, string> = {};
    (init.headers instanceof Headers ? init.headers : new Headers(init.headers)).forEach((value, name) => {
      headers[name] = value;
    });
    // A string body gets a length, as fetch gives it, rather than chunked encoding some servers refuse.
    if (body != null) headers["content-length"] = String(typeof body === "string" ? Buffer.byteLength(body) : body.byteLength);
    let route: ReturnType<typeof agentFor>;
    try {
      route = agentFor(url, secure ?? false);
    } catch (err) {
      return Promise.reject(err);
    }
    const { agent, via } = route;
    const max = opts.maxBodyBytes ?? Infinity;
    const transfer = (init as TransferInit)[TRANSFER];
    return agent instanceof Promise ? agent.then((a) => send(url, init, headers, a, via, max, transfer)) : send(url, init, headers, agent, via, max, transfer);
  };
  return httpFetch;
}

/** A multipart form as the bytes and content type fetch would send. */
async function formBytes(init: RequestInit): Promise<RequestInit> {
  const encoded = new Response(init.body as FormData);
  const headers = new Headers(init.headers);
  headers.set("content-type", encoded.headers.get("content-type")!);
  return { ...init, headers, body: new Uint8Array(await encoded.arrayBuffer()) };
}

/**
 * Marks a request as a Files API transfer (a batch's input file up, its output file down), in the
 * `fetchOptions` the SDK passes through to fetch. Such a request is bound by its progress, not by
 * one request's time: it fails once nothing moved for `stallMs` (no byte of its body taken by the
 * socket, or none of the answer's received). A 2xx answer's body is streamed, not read whole, and
 * not capped: the SDK's own timeout ends when fetch resolves, so the stall is what bounds it.
 */
export const TRANSFER = Symbol.for("synthbuild.transfer");
export interface Transfer {
  stallMs: number;
}
export type TransferInit = RequestInit & { [TRANSFER]?: Transfer };

export const TRANSFER_STALLED = "SYNTHBUILD_TRANSFER_STALLED";

/**
 * A caller's long-lived signal (a build's Ctrl-C) in the `fetchOptions` the SDK passes through to
 * fetch, instead of the SDK's own `signal` option. The SDK adds a listener to the signal it is
 * given and never removes it, so a build's one signal would keep one a request; a signal a request
 * that follows the build's costs a controller and two listeners more each, about 20 µs of a cold
 * build's CPU a request. Here a signal has one listener, however many requests it ends. Until a
 * request's response is handed over, the signal aborting destroys it and rejects with an AbortError.
 */
export const CANCEL = Symbol.for("synthbuild.cancel");
export type CancelInit = RequestInit & { [CANCEL]?: AbortSignal };

const cancellable = new WeakMap<AbortSignal, Set<() => void>>();

/** Calls `fn` when `signal` aborts, until the returned function is called. */
export function onCancel(signal: AbortSignal, fn: () => void): () => void {
  let live = cancellable.get(signal);
  if (!live) {
    const set = new Set<() => void>();
    const all = () => {
      for (const f of [...set]) f();
      set.clear();
    };
    signal.addEventListener("abort", all, { once: true });
    cancellable.set(signal, (live = set));
  }
  const set = live;
  set.add(fn);
  return () => void set.delete(fn);
}

function stalled(ms: number, what: string): Error {
  return Object.assign(new Error(`the transfer stalled: ${what} for ${Number((ms / 1000).toFixed(1))} s`), { code: TRANSFER_STALLED });
}

/**
 * What node:http makes of a URL string (urlToHttpOptions of its URL), made once for each URL: a
 * build sends every chat request to one, and parsing it each time was 6 µs a request.
 */
const parsedUrls = new Map<string, ReturnType<typeof urlToHttpOptions>>();
function urlOptions(url: string): ReturnType<typeof urlToHttpOptions> {
  let parsed = parsedUrls.get(url);
  if (!parsed) {
    // Files API paths carry ids: the map is for the few URLs requests repeat, not every one.
    if (parsedUrls.size >= 256) parsedUrls.clear();
    parsedUrls.set(url, (parsed = urlToHttpOptions(new URL(url))));
  }
  return parsed;
}

/** Bytes handed to the socket a write at a time: each one taken is progress. */
const UPLOAD_CHUNK = 1 << 20;

/** One request, its whole body read (or, for a transfer, streamed), as a standard Response (see createHttpFetch). */
function send(
  url: string,
  init: RequestInit,
  headers: Record<string, string>,
  agent: Agent,
  via: string | undefined,
  maxBodyBytes: number,
  transfer?: Transfer,
): Promise<Response> {
  const signal = init.signal ?? undefined;
  const cancel = (init as CancelInit)[CANCEL];
  // Aborted while a proxy agent was loading.
  if (signal?.aborted) return Promise.reject(abortReason(signal));
  if (cancel?.aborted) return Promise.reject(abortReason(cancel));
  const request = url.startsWith("https:") ? httpsRequest : httpRequest;
  return new Promise<Response>((resolve, reject) => {
    let settled = false;
    let uncancel: (() => void) | undefined;
    const fail = (err: unknown) => {
      if (settled) return;
      settled = true;
      signal?.removeEventListener("abort", onAbort);
      uncancel?.();
      if (cancel?.aborted) return reject(abortReason(cancel));
      // An abort (the SDK's timeout or the build's Ctrl-C) surfaces as the AbortError the SDK looks for.
      if (signal?.aborted) reject(abortReason(signal));
      else reject(via && err instanceof Error ? new Error(`${err.message} (via proxy ${via})`, { cause: err }) : err);
    };
    const onAbort = () => {
      req.destroy();
      fail(abortReason(signal!));
    };
    // A transfer's watchdog while its body is written; streamed() keeps its own for the answer.
    let watchdog: NodeJS.Timeout | undefined;
    let answered = false;
    const watch = () => {
      clearTimeout(watchdog);
      // An answer that came before the whole body went (a refusal) is the outcome; the rest is not watched.
      if (answered) return;
      watchdog = setTimeout(() => req.destroy(stalled(transfer!.stallMs, "the endpoint took no byte of the upload")), transfer!.stallMs);
    };
    const req = request({ ...urlOptions(url), method: init.method ?? "GET", headers, agent }, (res) => {
      answered = true;
      clearTimeout(watchdog);
      const status = res.statusCode ?? 0;
      if (transfer && status >= 200 && status < 300 && !NULL_BODY.has(status) && init.method !== "HEAD") {
        settled = true;
        uncancel?.();
        try {
          resolve(streamed(res, status, url, transfer.stallMs, signal, onAbort));
        } catch (err) {
          req.destroy();
          signal?.removeEventListener("abort", onAbort);
          reject(err);
        }
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      const tooLarge = () => {
        req.destroy();
        fail(responseTooLarge(maxBodyBytes));
      };
      if (Number(res.headers["content-length"]) > maxBodyBytes) return tooLarge();
      res.on("data", (c: Buffer) => {
        // Counted as it arrives: a runaway body must not be held in memory before it is refused.
        if ((size += c.length) > maxBodyBytes) tooLarge();
        else chunks.push(c);
      });
      res.on("error", fail);
      res.on("close", () => {
        if (!res.complete) fail(new Error("the connection closed before the response was complete"));
      });
      res.on("end", () => {
        if (settled) return;
        try {
          const response = toResponse(res, status, Buffer.concat(chunks), url, init.method === "HEAD");
          settled = true;
          signal?.removeEventListener("abort", onAbort);
          uncancel?.();
          resolve(response);
        } catch (err) {
          fail(err);
        }
      });
    });
    req.on("error", (err) => {
      clearTimeout(watchdog);
      fail(err);
    });
    signal?.addEventListener("abort", onAbort, { once: true });
    if (cancel)
      uncancel = onCancel(cancel, () => {
        req.destroy();
        fail(abortReason(cancel));
      });
    const body = (init.body as string | Uint8Array | null | undefined) ?? undefined;
    if (!transfer || body === undefined) return void req.end(body);
    // Written a piece at a time, so the watchdog sees each piece the socket takes.
    const bytes = typeof body === "string" ? Buffer.from(body) : body;
    let at = 0;
    const next = () => {
      while (at < bytes.byteLength) {
        const piece = bytes.subarray(at, at + UPLOAD_CHUNK);
        at += piece.byteLength;
        watch();
        if (!req.write(piece)) return void req.once("drain", next);
      }
      // All handed over: what is left is the endpoint's answer, bound by the caller's timeout.
      clearTimeout(watchdog);
      req.end();
    };
    next();
  });
}

/**
 * A transfer's 2xx answer as a Response whose body streams from the socket, decoded as `decode`
 * would. While it waits for the endpoint, each chunk re-arms the watchdog; one that fires fails
 * the body with the stall. Reading the body applies backpressure to the socket, so a slow reader
 * holds a few chunks, not the file (and is not taken for a stall).
 */
function streamed(res: IncomingMessage, status: number, url: string, stallMs: number, signal: AbortSignal | undefined, onAbort: () => void): Response {
  const headers = new Headers();
  for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const encoding = headers.get("content-encoding");
  let source: Readable = res;
  const codings = encoding ? encoding.split(",").map((c) => c.trim().toLowerCase()) : [];
  if (codings.length && codings.every((c) => STREAM_DECODERS.has(c)))
    for (let i = codings.length - 1; i >= 0; i--) {
      const decoder = STREAM_DECODERS.get(codings[i]!)!();
      const from = source;
      from.on("error", (e) => decoder.destroy(e));
      source = from.pipe(decoder);
    }
  let done = false;
  let watchdog: NodeJS.Timeout | undefined;
  const arm = () => {
    clearTimeout(watchdog);
    watchdog = setTimeout(() => res.destroy(stalled(stallMs, "nothing received")), stallMs);
  };
  const finish = () => {
    done = true;
    clearTimeout(watchdog);
    signal?.removeEventListener("abort", onAbort);
  };
  res.on("close", () => {
    if (!res.complete && !done) source.destroy(new Error("the connection closed before the response was complete"));
  });
  arm();
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      source.on("data", (c: Buffer) => {
        // A decoder may still flush after the reader let go: nothing more is enqueued then.
        if (done) return;
        controller.enqueue(new Uint8Array(c.buffer, c.byteOffset, c.byteLength));
        // Paused for a reader that is busy: its own slowness is no stall of the endpoint's.
        if ((controller.desiredSize ?? 1) <= 0) {
          source.pause();
          clearTimeout(watchdog);
        } else arm();
      });
      source.on("end", () => {
        finish();
        controller.close();
      });
      source.on("error", (err) => {
        finish();
        // An abort (the build's Ctrl-C) reads as the AbortError it is.
        controller.error(signal?.aborted ? abortReason(signal) : err);
      });
    },
    pull() {
      if (done || !source.isPaused()) return;
      arm();
      source.resume();
    },
    cancel() {
      finish();
      source.destroy();
      res.destroy();
    },
  });
  const response = new Response(body, { status, statusText: res.statusMessage ?? "", headers });
  Object.defineProperty(response, "url", { value: url });
  return response;
}

/**
 * No chat completion comes near this (a 128k-token answer is well under 1 MiB); a body that does
 * is a server gone wrong, and is refused before it fills the memory of a build with many in flight.
 */
export const MAX_RESPONSE_BYTES = 16 * 1024 * 1024;
export const RESPONSE_TOO_LARGE = "SYNTHBUILD_RESPONSE_TOO_LARGE";

export function responseTooLarge(max: number): Error {
  return Object.assign(new Error(`the response is larger than ${Math.round(max / 1024 / 1024)} MiB, far more than any chat completion: refused`), {
    code: RESPONSE_TOO_LARGE,
  });
}

/** An agent through the proxy, loaded only by runs that use one. */
async function proxyAgent(route: ProxyRoute, secure: boolean): Promise<Agent> {
  const opts = { keepAlive: true, headers: route.authorization ? { "proxy-authorization": route.authorization } : {} };
  if (secure) {
    const { HttpsProxyAgent } = await import("https-proxy-agent");
    return new HttpsProxyAgent(route.url, opts);
  }
  const { HttpProxyAgent } = await import("http-proxy-agent");
  return new HttpProxyAgent(route.url, opts);
}

const NULL_BODY = new Set([101, 103, 204, 205, 304]);

function toResponse(res: IncomingMessage, status: number, raw: Buffer, url: string, head: boolean): Response {
  if (status < 200 || status > 599) throw new Error(`invalid HTTP status ${status}`);
  const headers = new Headers();
  for (let i = 0; i < res.rawHeaders.length; i += 2) headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
  const encoding = headers.get("content-encoding");
  const bytes = NULL_BODY.has(status) || head ? null : encoding && raw.length ? decode(raw, encoding) : raw;
  return bufferedResponse(bytes, { status, statusText: res.statusMessage ?? "", headers }, url);
}

const utf8 = new TextDecoder();

/**
 * A Response whose body is already in memory, read without a web stream. Node's `new
 * Response(bytes)` puts the bytes behind a ReadableStream, and `.json()` pulls them back through
 * it: about 60 µs a request, a tenth of a cold build's CPU at scale (`npm run bench -- cold100k`).
 * text, json and arrayBuffer read the bytes directly, as fetch would (UTF-8, a BOM dropped, a
 * body read once); everything else (body, blob, formData, bytes) goes to a real Response over
 * the same bytes, made on first use, so nothing the platform adds can read an empty body here.
 */
export function bufferedResponse(bytes: Buffer | null, init: ResponseInit, url: string): Response {
  return new BufferedResponse(bytes, init, url) as unknown as Response;
}

// The platform's types declare Response's members as properties; this class overrides them with
// methods and accessors, which TypeScript refuses against those declarations.
const ResponseBase = Response as unknown as new (body: null, init: ResponseInit) => Pick<Response, "status" | "statusText" | "headers">;

class BufferedResponse extends ResponseBase {
  readonly #bytes: Buffer | null;
  readonly #url: string;
  #read = false;
  #full: Response | undefined;

  constructor(bytes: Buffer | null, init: ResponseInit, url: string) {
    super(null, init);
    this.#bytes = bytes;
    this.#url = url;
  }

  get url(): string {
    return this.#url;
  }

  get body(): ReadableStream<Uint8Array> | null {
    // Read directly already: the stream is one already read, as a real Response's would be.
    if (this.#read && !this.#full) void this.#real().arrayBuffer();
    return this.#real().body;
  }

  get bodyUsed(): boolean {
    return this.#read || (this.#full?.bodyUsed ?? false);
  }

  text(): Promise<string> {
    return this.#take(
      (b) => utf8.decode(b),
      (r) => r.text(),
    );
  }

  json(): Promise<unknown> {
    return this.#take(
      (b) => JSON.parse(utf8.decode(b)),
      (r) => r.json(),
    );
  }

  arrayBuffer(): Promise<ArrayBuffer> {
    return this.#take(
      (b) => b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer,
      (r) => r.arrayBuffer(),
    );
  }

  blob(): Promise<Blob> {
    return this.#after().then((r) => r.blob());
  }

  formData(): Promise<FormData> {
    return this.#after().then((r) => r.formData());
  }

  bytes(): Promise<Uint8Array> {
    return this.#take(
      (b) => new Uint8Array(b),
      (r) => r.arrayBuffer().then((a) => new Uint8Array(a)),
    );
  }

  clone(): Response {
    if (this.bodyUsed || this.#full?.body?.locked) throw new TypeError("Response.clone: Body has already been consumed.");
    return bufferedResponse(this.#bytes, { status: this.status, statusText: this.statusText, headers: new Headers(this.headers) }, this.#url);
  }

  /** One read of the body: directly, unless the real Response (and its stream) already exists. */
  #take<T>(direct: (bytes: Buffer) => T, viaReal: (r: Response) => Promise<T>): Promise<T> {
    if (this.#read) return Promise.reject(new TypeError("Body is unusable: Body has already been read"));
    if (this.#full) return viaReal(this.#full);
    // No body is never used up: every read gives the empty body again, as with fetch.
    if (this.#bytes !== null) this.#read = true;
    try {
      return Promise.resolve(direct(this.#bytes ?? Buffer.alloc(0)));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #after(): Promise<Response> {
    if (this.#read) return Promise.reject(new TypeError("Body is unusable: Body has already been read"));
    return Promise.resolve(this.#real());
  }

  #real(): Response {
    this.#full ??= new Response(this.#bytes, { status: this.status, statusText: this.statusText, headers: this.headers });
    return this.#full;
  }
}

/**
 * We ask for no compression; a server that compresses anyway is decoded as Node's fetch decodes
 * it: codings undone last-applied first, deflate with or without its zlib wrapper, and nothing
 * decoded at all if any coding is one it does not know (identity included).
 */
function decode(body: Buffer, header: string): Buffer {
  const codings = header.split(",").map((c) => c.trim().toLowerCase());
  if (!codings.every((c) => DECODERS.has(c))) return body;
  for (let i = codings.length - 1; i >= 0; i--) body = DECODERS.get(codings[i]!)!(body);
  return body;
}

const DECODERS = new Map<string, (b: Buffer) => Buffer>([
  ["gzip", (b) => gunzipSync(b)],
  ["x-gzip", (b) => gunzipSync(b)],
  ["br", (b) => brotliDecompressSync(b)],
  ["deflate", (b) => (b[0] !== undefined && (b[0] & 0x0f) === 8 ? inflateSync(b) : inflateRawSync(b))],
]);

/** Deflate with its zlib wrapper or without, told apart by the first byte as `decode` tells them. */
function inflateEither(): Transform {
  let inner: Transform | undefined;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      if (!inner) {
        inner = (chunk[0]! & 0x0f) === 8 ? createInflate() : createInflateRaw();
        inner.on("data", (d) => this.push(d));
        inner.on("error", (e) => this.destroy(e));
      }
      inner.write(chunk, () => cb());
    },
    flush(cb) {
      if (!inner) return cb();
      inner.once("end", () => cb());
      inner.end();
    },
  });
}

const STREAM_DECODERS = new Map<string, () => Transform>([
  ["gzip", () => createGunzip()],
  ["x-gzip", () => createGunzip()],
  ["br", () => createBrotliDecompress()],
  ["deflate", inflateEither],
]);

function abortReason(signal: AbortSignal): unknown {
  return signal.reason ?? new DOMException("This operation was aborted", "AbortError");
}
