/**
 * The Files and Batches APIs of the test server, as OpenAI serves them: a JSONL file uploaded
 * (multipart, purpose "batch"), a batch created over it, its status moving with time
 * (validating → in_progress → finalizing → completed, each stage `stepMs` long), then an output
 * file (one line per answered request) and an error file (one line per failed request). Lines are
 * answered by the same deterministic function as /v1/chat/completions, so a batch answer is the
 * direct answer to the same body. Faults: a line whose prompt contains a marker fails (into the
 * error file), a batch expires with part of its lines answered, a batch fails validation or is
 * refused with an error code (token_limit_exceeded), a call fails for a number of times or for a
 * while (an error status, or the connection dropped), uploads and downloads go slowly or stall,
 * a download holds part of its file back until released, ids carry the caller's key.
 * Files and batches belong to the API key that made them, as OpenAI's belong to a project: under
 * another key they are unknown (404), though they still run.
 */
import type http from "node:http";

export interface BatchLineFault {
  /** Lines whose concatenated message contents include this. */
  match: string;
  /** How many matching lines fail (default: all, forever). */
  times?: number;
  /** The status of the failed line's response (default 500). */
  status?: number;
  /** Instead of failing: a 200 whose answer is a refusal, a content filter's stop, empty (as the chat faults of those names), or prose where JSON was asked for. */
  kind?: "refusal" | "content_filter" | "empty" | "not_json";
}

/** A fault of one call of the Batches API (not of a line). */
export interface BatchCallFault {
  call: "create" | "retrieve" | "content" | "list" | "upload";
  /** How many calls fail (default 1). */
  times?: number;
  /** Instead of `times`: every call fails for this long from the first it fails (an outage). */
  forMs?: number;
  /** Instead of an error status: the connection is dropped without an answer. */
  reset?: boolean;
  /** The status answered (default 502). */
  status?: number;
  /** A retry-after header, in seconds. */
  retryAfter?: number;
  /** For create: the batch is made, then the fault answered (the answer lost on the way back). */
  afterCreate?: boolean;
  /** For content: a 200 whose first line is not JSON, instead of an error status. */
  corrupt?: boolean;
}

export interface BatchServerOptions {
  /** How long each stage (validating, in_progress, finalizing) lasts (default 50 ms). */
  stepMs?: number;
}

/** How file transfers go (see BatchServer.transfers). */
export interface TransferPace {
  /** An upload is answered only after as long as it would take at this rate. */
  uploadBytesPerSec?: number;
  /** A download is sent in pieces, at this rate. */
  downloadBytesPerSec?: number;
  /** The next download sends its first half, then nothing more (until the client gives up). */
  stallDownload?: boolean;
}

export interface BatchStats {
  batchesCreated: number;
  filesUploaded: number;
  filesDeleted: number;
  /** Lines answered (to the output file) over all batches. */
  linesAnswered: number;
  /** Lines that went to an error file. */
  linesFailed: number;
  cancelled: number;
}

interface StoredFile {
  id: string;
  bytes: Buffer;
  filename: string;
  purpose: string;
  created_at: number;
  /** The Authorization header of the upload (or of the batch that wrote it). */
  owner: string;
}

interface StoredBatch {
  id: string;
  input_file_id: string;
  endpoint: string;
  completion_window: string;
  metadata: Record<string, string> | null;
  createdMs: number;
  /** Set when the batch is settled: its final status and files. */
  final?: { status: "completed" | "expired" | "cancelled" | "failed"; output_file_id?: string; error_file_id?: string; counts: Counts; at: number };
  cancelAtMs?: number;
  expire: boolean;
  /** The validation error, for a batch that fails. */
  invalid?: string;
  /** Its error code (default invalid_request). */
  invalidCode?: string;
  total: number;
  owner: string;
}

interface Counts {
  total: number;
  completed: number;
  failed: number;
}

type Answer = (body: any, n: number) => any;
type Send = (res: http.ServerResponse, status: number, payload: unknown, headers?: Record<string, string>) => void;

export class BatchServer {
  private readonly files = new Map<string, StoredFile>();
  private readonly batches = new Map<string, StoredBatch>();
  private readonly lineFaults: { fault: BatchLineFault; remaining: number }[] = [];
  private readonly callFaults: { fault: BatchCallFault; remaining: number; until?: number }[] = [];
  private refuseNext: { code: string; message: string; remaining: number } | undefined;
  private pace: TransferPace = {};
  private hold: { lines: number; released: Promise<void>; release: () => void } | undefined;
  private keyInIds: "file" | "batch" | undefined;
  private expireNext = 0;
  private seq = 0;
  private stepMs: number;
  private readonly initialStepMs: number;
  readonly counts: BatchStats = { batchesCreated: 0, filesUploaded: 0, filesDeleted: 0, linesAnswered: 0, linesFailed: 0, cancelled: 0 };

  constructor(
    opts: BatchServerOptions,
    private readonly answer: Answer,
    private readonly contentOf: (body: any) => string,
    private readonly send: Send,
  ) {
    this.stepMs = this.initialStepMs = opts.stepMs ?? 50;
  }

  setStepMs(ms: number): void {
    this.stepMs = ms;
  }

  /** Lines matching fail (into the error file) until `times` are spent. */
  failLines(fault: BatchLineFault): void {
    this.lineFaults.push({ fault, remaining: fault.times ?? Infinity });
  }

  /** The next calls of this kind fail (see BatchCallFault). */
  failCalls(fault: BatchCallFault): void {
    this.callFaults.push({ fault, remaining: fault.forMs !== undefined ? Infinity : (fault.times ?? 1) });
  }

  /** The fault the next call of this kind takes, if any. */
  private callFault(call: BatchCallFault["call"]): BatchCallFault | undefined {
    const now = Date.now();
    const f = this.callFaults.find((x) => x.fault.call === call && x.remaining > 0 && (x.until === undefined || now < x.until));
    if (f) f.remaining--;
    if (f?.fault.forMs !== undefined) f.until ??= now + f.fault.forMs;
    return f?.fault;
  }

  /** No more line or call faults (the counters and batches stay). */
  clearFaults(): void {
    this.lineFaults.length = 0;
    this.callFaults.length = 0;
  }

  /** The next `times` batches (default: all) fail validation with this error code, as OpenAI refuses a batch over the organisation's enqueued-token limit. */
  refuseBatches(
    code: string,
    times = Infinity,
    message = "Enqueued token limit reached for test-model in organization org-test. Limit: 90,000 enqueued tokens.",
  ): void {
    this.refuseNext = { code, message, remaining: times };
  }

  /** How uploads and downloads go from now (see TransferPace). */
  transfers(pace: TransferPace): void {
    this.pace = pace;
  }

  /** The next download sends its first `lines` lines, then waits for the returned release. */
  holdDownload(lines: number): () => void {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.hold = { lines, released, release };
    return release;
  }

  /** Ids of that kind made from now on carry the key the request authorised with (an endpoint that echoes it). */
  echoKeyInIds(kind: "file" | "batch" | undefined): void {
    this.keyInIds = kind;
  }

  /** The key a request authorised with, as an id may carry it. */
  private keyOf(req: http.IncomingMessage): string {
    return String(req.headers.authorization ?? "").replace(/^Bearer\s+/i, "");
  }

  private sendFault(res: http.ServerResponse, f: BatchCallFault): void {
    if (f.reset) return void res.socket?.destroy();
    const status = f.status ?? 502;
    this.send(res, status, errorOf(`Injected ${f.call} fault (${status})`), f.retryAfter !== undefined ? { "retry-after": String(f.retryAfter) } : {});
  }

  /** The next `n` batches expire after in_progress, with the first half of their lines answered. */
  expireBatches(n: number): void {
    this.expireNext += n;
  }

  /** Every batch created, newest last: id, status, the custom_ids of its input. */
  list(): { id: string; status: string; customIds: string[] }[] {
    return [...this.batches.values()].map((b) => ({ id: b.id, status: this.view(b).status, customIds: this.lines(b).map((l) => l.custom_id) }));
  }

  /** Forgets every file and batch, the faults and the counters; the stage length given at start comes back. */
  reset(): void {
    this.stepMs = this.initialStepMs;
    this.files.clear();
    this.batches.clear();
    this.lineFaults.length = 0;
    this.callFaults.length = 0;
    this.refuseNext = undefined;
    this.pace = {};
    this.hold?.release();
    this.hold = undefined;
    this.keyInIds = undefined;
    this.expireNext = 0;
    Object.assign(this.counts, { batchesCreated: 0, filesUploaded: 0, filesDeleted: 0, linesAnswered: 0, linesFailed: 0, cancelled: 0 });
  }

  /** Handles the route if it is one of the Files or Batches API; false if not. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, path: string, body: () => Promise<Buffer | null>): boolean {
    const method = req.method ?? "GET";
    const p = path.replace(/^\/v1/, "");
    const owner = String(req.headers.authorization ?? "");
    let m: RegExpExecArray | null;
    if (method === "POST" && p === "/files") return this.run(res, this.upload(req, res, body, owner));
    if (method === "GET" && (m = /^\/files\/([^/]+)\/content$/.exec(p))) return this.run(res, this.content(res, m[1]!, owner));
    if (method === "GET" && (m = /^\/files\/([^/]+)$/.exec(p))) return this.run(res, this.fileInfo(res, m[1]!, owner));
    if (method === "DELETE" && (m = /^\/files\/([^/]+)$/.exec(p))) return this.run(res, this.deleteFile(res, m[1]!, owner));
    if (method === "POST" && p === "/batches") return this.run(res, this.create(req, res, body, owner));
    if (method === "GET" && p === "/batches") return this.run(res, this.listPage(res, owner));
    if (method === "GET" && (m = /^\/batches\/([^/]+)$/.exec(p))) return this.run(res, this.retrieve(res, m[1]!, owner));
    if (method === "POST" && (m = /^\/batches\/([^/]+)\/cancel$/.exec(p))) return this.run(res, this.cancel(res, m[1]!, owner));
    return false;
  }

  private run(res: http.ServerResponse, work: Promise<void> | void): true {
    Promise.resolve(work).catch((err) => this.send(res, 500, errorOf(`test server error: ${String(err)}`)));
    return true;
  }

  /** A file of this owner's. */
  private file(id: string, owner: string): StoredFile | undefined {
    const f = this.files.get(id);
    return f?.owner === owner ? f : undefined;
  }

  /** A batch of this owner's. */
  private batch(id: string, owner: string): StoredBatch | undefined {
    const b = this.batches.get(id);
    return b?.owner === owner ? b : undefined;
  }

  private async upload(req: http.IncomingMessage, res: http.ServerResponse, body: () => Promise<Buffer | null>, owner: string): Promise<void> {
    const fault = this.callFault("upload");
    if (fault) {
      req.resume();
      return this.sendFault(res, fault);
    }
    const raw = await body();
    // As slow as a link at that rate: the answer comes once the last byte would have arrived.
    if (raw && this.pace.uploadBytesPerSec) await new Promise((r) => setTimeout(r, (raw.length / this.pace.uploadBytesPerSec!) * 1000));
    const type = String(req.headers["content-type"] ?? "");
    const boundary = /boundary=("?)([^";]+)\1/.exec(type)?.[2];
    if (!raw || !boundary) return this.send(res, 400, errorOf("expected a multipart/form-data upload"));
    const parts = multipart(raw, boundary);
    const file = parts.find((x) => x.name === "file" && x.filename !== undefined);
    const purpose = parts.find((x) => x.name === "purpose")?.data.toString("utf8");
    if (!file || !purpose) return this.send(res, 400, errorOf("the upload needs a file and a purpose"));
    const id = `file-test-${++this.seq}${this.keyInIds === "file" ? `-${this.keyOf(req)}` : ""}`;
    const stored = { id, bytes: file.data, filename: file.filename!, purpose, created_at: Math.floor(Date.now() / 1000), owner };
    this.files.set(id, stored);
    this.counts.filesUploaded++;
    this.send(res, 200, this.fileObject(stored));
  }

  private fileObject(f: StoredFile) {
    return { id: f.id, object: "file", bytes: f.bytes.length, created_at: f.created_at, filename: f.filename, purpose: f.purpose, status: "processed" };
  }

  private fileInfo(res: http.ServerResponse, id: string, owner: string) {
    const f = this.file(id, owner);
    if (!f) return this.send(res, 404, errorOf(`No such File object: ${id}`));
    this.send(res, 200, this.fileObject(f));
  }

  private deleteFile(res: http.ServerResponse, id: string, owner: string) {
    if (!this.file(id, owner) || !this.files.delete(id)) return this.send(res, 404, errorOf(`No such File object: ${id}`));
    this.counts.filesDeleted++;
    this.send(res, 200, { id, object: "file", deleted: true });
  }

  private listPage(res: http.ServerResponse, owner: string) {
    const fault = this.callFault("list");
    if (fault) return this.sendFault(res, fault);
    this.send(res, 200, this.page(owner));
  }

  private async content(res: http.ServerResponse, id: string, owner: string) {
    const f = this.file(id, owner);
    if (!f) return this.send(res, 404, errorOf(`No such File object: ${id}`));
    const fault = f.purpose === "batch_output" ? this.callFault("content") : undefined;
    if (fault && !fault.corrupt) return this.sendFault(res, fault);
    if (fault) {
      const text = f.bytes.toString("utf8").replace(/^[^\n]*/, (l) => l.slice(0, Math.floor(l.length / 2)));
      res.writeHead(200, { "content-type": "application/octet-stream", "content-length": Buffer.byteLength(text) });
      return void res.end(text);
    }
    res.writeHead(200, { "content-type": "application/octet-stream", "content-length": f.bytes.length });
    const hold = f.purpose === "batch_output" ? this.hold : undefined;
    if (hold) {
      this.hold = undefined;
      const cut = nthLineEnd(f.bytes, hold.lines);
      res.write(f.bytes.subarray(0, cut));
      await hold.released;
      return void res.end(f.bytes.subarray(cut));
    }
    if (f.purpose === "batch_output" && this.pace.stallDownload) {
      this.pace = { ...this.pace, stallDownload: false };
      // Half the file, then silence: the client must notice and give up on its own.
      return void res.write(f.bytes.subarray(0, Math.floor(f.bytes.length / 2)));
    }
    const rate = this.pace.downloadBytesPerSec;
    if (!rate) return void res.end(f.bytes);
    const piece = Math.max(1, Math.floor(rate / 20));
    for (let at = 0; at < f.bytes.length && !res.destroyed; at += piece) {
      res.write(f.bytes.subarray(at, at + piece));
      await new Promise((r) => setTimeout(r, 50));
    }
    res.end();
  }

  private async create(req: http.IncomingMessage, res: http.ServerResponse, body: () => Promise<Buffer | null>, owner: string): Promise<void> {
    let params: any;
    try {
      params = JSON.parse((await body())?.toString("utf8") ?? "");
    } catch {
      return this.send(res, 400, errorOf("We could not parse the JSON body of your request."));
    }
    const fault = this.callFault("create");
    if (fault && !fault.afterCreate) return this.sendFault(res, fault);
    const input = this.file(params?.input_file_id, owner);
    if (!input) return this.send(res, 400, errorOf(`No such File object: ${params?.input_file_id}`));
    if (params.endpoint !== "/v1/chat/completions" && params.endpoint !== "/v1/completions")
      return this.send(res, 400, errorOf(`unsupported endpoint ${params.endpoint}`));
    const id = `batch_test_${++this.seq}${this.keyInIds === "batch" ? `_${this.keyOf(req)}` : ""}`;
    const b: StoredBatch = {
      id,
      input_file_id: input.id,
      endpoint: params.endpoint,
      completion_window: params.completion_window ?? "24h",
      metadata: params.metadata ?? null,
      createdMs: Date.now(),
      expire: this.expireNext > 0,
      total: 0,
      owner,
    };
    if (this.expireNext > 0) this.expireNext--;
    try {
      const lines = this.lines(b);
      b.total = lines.length;
      const ids = new Set<string>();
      for (const l of lines) {
        if (typeof l.custom_id !== "string" || l.method !== "POST" || l.url !== b.endpoint || !l.body || typeof l.body !== "object")
          throw new Error("each line needs custom_id, method POST, the batch's url and a body");
        if (ids.has(l.custom_id)) throw new Error(`duplicate custom_id ${l.custom_id}`);
        ids.add(l.custom_id);
      }
      if (new Set(lines.map((l) => l.body.model)).size > 1) throw new Error("every line of a batch must name the same model");
    } catch (err) {
      b.invalid = (err as Error).message;
    }
    if (!b.invalid && this.refuseNext && this.refuseNext.remaining > 0) {
      this.refuseNext.remaining--;
      b.invalid = this.refuseNext.message;
      b.invalidCode = this.refuseNext.code;
    }
    this.batches.set(id, b);
    this.counts.batchesCreated++;
    if (fault) return this.sendFault(res, fault);
    this.send(res, 200, this.view(b));
  }

  /** GET /v1/batches: every batch of this owner's, newest first, in one page. */
  private page(owner: string) {
    const data = [...this.batches.values()]
      .filter((b) => b.owner === owner)
      .reverse()
      .map((b) => this.view(b));
    return { object: "list", data, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null, has_more: false };
  }

  private lines(b: StoredBatch): any[] {
    const text = this.files.get(b.input_file_id)!.bytes.toString("utf8");
    return text
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l));
  }

  private retrieve(res: http.ServerResponse, id: string, owner: string) {
    const fault = this.callFault("retrieve");
    if (fault) return this.sendFault(res, fault);
    const b = this.batch(id, owner);
    if (!b) return this.send(res, 404, errorOf(`No batch found with id '${id}'.`));
    this.send(res, 200, this.view(b));
  }

  private cancel(res: http.ServerResponse, id: string, owner: string) {
    const b = this.batch(id, owner);
    if (!b) return this.send(res, 404, errorOf(`No batch found with id '${id}'.`));
    const v = this.view(b);
    if (b.final || b.cancelAtMs !== undefined) return this.send(res, v.status === "cancelled" || v.status === "cancelling" ? 200 : 400, v);
    b.cancelAtMs = Date.now();
    this.counts.cancelled++;
    this.send(res, 200, this.view(b));
  }

  /** The batch as the API shows it now: its status follows the clock. */
  private view(b: StoredBatch) {
    const now = Date.now();
    const at = (ms: number) => Math.floor(ms / 1000);
    const base = {
      id: b.id,
      object: "batch",
      endpoint: b.endpoint,
      errors: null as unknown,
      input_file_id: b.input_file_id,
      completion_window: b.completion_window,
      created_at: at(b.createdMs),
      expires_at: at(b.createdMs + 24 * 3600_000),
      metadata: b.metadata,
      output_file_id: null as string | null,
      error_file_id: null as string | null,
      request_counts: { total: 0, completed: 0, failed: 0 } as Counts,
    };
    if (b.invalid) {
      if (now < b.createdMs + this.stepMs) return { ...base, status: "validating" };
      return {
        ...base,
        status: "failed",
        failed_at: at(b.createdMs + this.stepMs),
        errors: { object: "list", data: [{ code: b.invalidCode ?? "invalid_request", message: b.invalid, line: null, param: null }] },
      };
    }
    if (!b.final && b.cancelAtMs !== undefined) {
      if (now < b.cancelAtMs + this.stepMs)
        return { ...base, status: "cancelling", cancelling_at: at(b.cancelAtMs), request_counts: { total: b.total, completed: 0, failed: 0 } };
      this.settle(b, "cancelled", 0);
    }
    const step = this.stepMs;
    if (!b.final) {
      if (now < b.createdMs + step) return { ...base, status: "validating" };
      const progress = { total: b.total, completed: 0, failed: 0 };
      if (now < b.createdMs + 2 * step) return { ...base, status: "in_progress", in_progress_at: at(b.createdMs + step), request_counts: progress };
      if (b.expire) this.settle(b, "expired", Math.floor(b.total / 2));
      else if (now < b.createdMs + 3 * step) return { ...base, status: "finalizing", in_progress_at: at(b.createdMs + step), request_counts: progress };
      else this.settle(b, "completed", b.total);
    }
    const f = b.final!;
    return {
      ...base,
      status: f.status,
      [`${f.status === "cancelled" ? "cancelled" : f.status}_at`]: at(f.at),
      output_file_id: f.output_file_id ?? null,
      error_file_id: f.error_file_id ?? null,
      request_counts: f.counts,
    };
  }

  /** Answer the first `answered` lines (the rest expired or were cancelled), writing the output and error files. */
  private settle(b: StoredBatch, status: "completed" | "expired" | "cancelled", answered: number): void {
    const out: string[] = [];
    const errs: string[] = [];
    this.lines(b).forEach((line, i) => {
      const reqId = `req_batch_${b.id}_${i}`;
      if (i >= answered) {
        if (status === "completed") return;
        const code = status === "expired" ? "batch_expired" : "batch_cancelled";
        errs.push(
          JSON.stringify({
            id: `batch_req_${i}`,
            custom_id: line.custom_id,
            response: null,
            error: { code, message: `This request could not be executed before the batch ${status}.` },
          }),
        );
        return;
      }
      const fault = this.takeFault(line.body);
      if (fault?.kind) {
        const body = this.answer(line.body, i);
        const choice = body.choices[0];
        if (fault.kind === "refusal") Object.assign(choice.message, { content: null, refusal: "I'm sorry, I can't help with that." });
        else if (fault.kind === "not_json") choice.message.content = "Here is the answer you asked for.";
        else {
          choice.message.content = "";
          choice.finish_reason = fault.kind === "content_filter" ? "content_filter" : "stop";
        }
        out.push(JSON.stringify({ id: `batch_req_${i}`, custom_id: line.custom_id, response: { status_code: 200, request_id: reqId, body }, error: null }));
        return;
      }
      if (fault) {
        const st = fault.status ?? 500;
        errs.push(
          JSON.stringify({
            id: `batch_req_${i}`,
            custom_id: line.custom_id,
            response: { status_code: st, request_id: reqId, body: errorOf(`Injected batch line fault (${st})`) },
            error: null,
          }),
        );
        return;
      }
      out.push(
        JSON.stringify({
          id: `batch_req_${i}`,
          custom_id: line.custom_id,
          response: { status_code: 200, request_id: reqId, body: this.answer(line.body, i) },
          error: null,
        }),
      );
    });
    this.counts.linesAnswered += out.length;
    this.counts.linesFailed += errs.filter((e) => JSON.parse(e).response).length;
    const file = (lines: string[], kind: string) => {
      if (!lines.length) return undefined;
      const id = `file-test-${++this.seq}`;
      this.files.set(id, {
        id,
        bytes: Buffer.from(`${lines.join("\n")}\n`),
        filename: `${b.id}_${kind}.jsonl`,
        purpose: "batch_output",
        created_at: Math.floor(Date.now() / 1000),
        owner: b.owner,
      });
      return id;
    };
    b.final = {
      status,
      output_file_id: file(out, "output"),
      error_file_id: file(errs, "error"),
      counts: { total: b.total, completed: out.length, failed: errs.length },
      at: Date.now(),
    };
  }

  private takeFault(body: any): BatchLineFault | undefined {
    const text = this.contentOf(body);
    for (const f of this.lineFaults) {
      if (f.remaining > 0 && text.includes(f.fault.match)) {
        f.remaining--;
        return f.fault;
      }
    }
    return undefined;
  }
}

/** Where the first `n` lines of a file end (all of it if it has fewer). */
function nthLineEnd(bytes: Buffer, n: number): number {
  let at = 0;
  for (let i = 0; i < n; i++) {
    const nl = bytes.indexOf(10, at);
    if (nl === -1) return bytes.length;
    at = nl + 1;
  }
  return at;
}

function errorOf(message: string) {
  return { error: { message, type: "invalid_request_error", param: null, code: null } };
}

/** The parts of a multipart/form-data body (enough of RFC 7578 for what the SDK sends). */
function multipart(raw: Buffer, boundary: string): { name: string; filename?: string; data: Buffer }[] {
  const parts: { name: string; filename?: string; data: Buffer }[] = [];
  const delim = Buffer.from(`--${boundary}`);
  let at = raw.indexOf(delim);
  while (at !== -1) {
    const start = at + delim.length;
    if (raw.subarray(start, start + 2).toString() === "--") break;
    const next = raw.indexOf(delim, start);
    if (next === -1) break;
    const part = raw.subarray(start + 2, next - 2);
    const headEnd = part.indexOf("\r\n\r\n");
    const head = part.subarray(0, headEnd).toString("utf8");
    const name = /name="([^"]*)"/.exec(head)?.[1] ?? "";
    const filename = /filename="([^"]*)"/.exec(head)?.[1];
    parts.push({ name, filename, data: part.subarray(headEnd + 4) });
    at = next;
  }
  return parts;
}
