import { type BatchRecord, readBatchRequests, removeBatchRecord, writeBatchRecord } from "../cache/batch-state.js";
import { type EndpointError, SynthbuildError } from "../errors.js";
import type { BuildEvents } from "../events.js";
import type { GenerateStep } from "../manifest/types.js";
import { dropReason, isRetryableEmpty } from "../plan/answer-drops.js";
import type { Answer } from "../plan/pipeline.js";
import { type ChatRequest, requestKey } from "../plan/request.js";
import { type BatchView, SETTLED } from "../providers/batch-format.js";
import type { BatchLineResult, OpenAIBatches } from "../providers/openai-batch.js";
import { EndpointRefused, NoResponse, type ProviderAnswer, RequestError } from "../providers/types.js";
import { displayUrl } from "../util/redact.js";
import { sleep } from "../util/sleep.js";
import type { BatchItem, BatchLimits } from "./batch-runner.js";
import { endpointError, endpointOf, OPENAI_URL, type StopProblem } from "./endpoint-errors.js";
import { validateJsonAnswer } from "./json-answer.js";
import type { ProviderPool } from "./providers.js";
import type { BuildResolver } from "./resolver.js";

/** How long a build waits for an endpoint to say whether a batch no sample waits for is done. */
const IDLE_ASK_MS = 10_000;

/** What asking a batch no run waits for found (BatchCollector.collectIdle). */
export type IdleOutcome = { done: BatchView["status"]; why: string } | { running: BatchView["status"] } | { unknown: true } | { unasked: string };

/** Answers of a batch stored at once. */
const STORE_WIDTH = 64;

/** What became of one request of a settled batch: its answer (stored), or the error that stands for it. */
export type LineOutcome = { answer: Answer } | { error: RequestError };

/** A settled batch's outcomes, by key, for the requests this build wants. */
export interface Collected {
  id: string;
  lines: Map<string, LineOutcome>;
}

/**
 * What became of a batch waited for: settled, with its lines; unknown to the endpoint (a 404 for
 * its id while the Batches API answers), with what to tell its samples; or gone (another build
 * collected it, or it was forgotten). Undefined: interrupted, or given up on.
 */
export type Settled = Collected | { unknown: string } | { gone: true };

/**
 * Create the batch of a record that has none yet, holding the claim (BatchRunner.createPending):
 * the batch; "recorded" (another build created it, its id now in the record); "gone"; undefined
 * when interrupted.
 */
export type CreatePending = (
  client: OpenAIBatches,
  step: GenerateStep,
  rec: BatchRecord,
  like: ChatRequest,
) => Promise<BatchView | "recorded" | "gone" | undefined>;

/** A batch refused for the organisation's enqueued-token limit: its requests go again, later, not counted as attempts. */
export class Requeue extends RequestError {
  constructor(message: string) {
    super(message, true);
  }
}

/**
 * A submitted batch until what it answered is in the cache: polled until it settles, its output
 * and error files read as they arrive, each answer stored the moment its line is read, and what
 * became of every request this build wants. What it collects is paid for, so its calls ride out
 * an endpoint that is down far longer than one request's retries (see `patiently`).
 */
export class BatchCollector {
  /** Batches being waited for in this build, by input file: two steps never poll one twice. */
  private readonly settling = new Map<string, Promise<Settled | undefined>>();
  /** Batches this build stopped waiting for (past limits.giveUpMs): left, with their records, to the next build. */
  readonly givenUp = new Set<string>();
  /**
   * The requests the runs of this build wait for, by key (two steps may send the same one): a
   * batch's lines are stored as they are read, once, whichever step's run reads them; a line no
   * run wants is not stored.
   */
  private readonly wanted = new Map<string, BatchItem[]>();
  /** Endpoints already said to be down (once a build). */
  private readonly saidDown = new Set<string>();
  /** Batches unknown to the endpoint whose warning this build has given. */
  private readonly toldUnknown = new Set<string>();

  constructor(
    private readonly resolver: BuildResolver,
    private readonly pool: ProviderPool,
    private readonly cacheDir: string,
    private readonly signal: AbortSignal,
    private readonly limits: BatchLimits,
    private readonly events: BuildEvents,
    /** The records this build knows of (a dropped one is forgotten there too). */
    private readonly records: () => Promise<BatchRecord[]>,
    private readonly createPending: CreatePending,
  ) {}

  /** Whether this build is waiting for the batch over this input file now. */
  isSettling(inputFileId: string): boolean {
    return this.settling.has(inputFileId);
  }

  /** A run waits for these requests (until `unwant`). */
  want(items: Iterable<BatchItem>): void {
    for (const i of items) {
      const all = this.wanted.get(i.key);
      if (!all) this.wanted.set(i.key, [i]);
      else if (!all.includes(i)) all.push(i);
    }
  }

  unwant(items: Iterable<BatchItem>): void {
    for (const i of items) {
      const all = this.wanted.get(i.key)?.filter((x) => x !== i);
      if (all?.length) this.wanted.set(i.key, all);
      else this.wanted.delete(i.key);
    }
  }

  private itemFor(key: string): BatchItem | undefined {
    return this.wanted.get(key)?.[0];
  }

  /** Create the batch if the record has none yet, poll it until it settles, read its files. Undefined: interrupted. */
  settle(client: OpenAIBatches, step: GenerateStep, rec: BatchRecord) {
    let p = this.settling.get(rec.input_file_id);
    if (!p) {
      p = this.collect(client, step, rec);
      this.settling.set(rec.input_file_id, p);
      void p.finally(() => this.settling.delete(rec.input_file_id)).catch(() => {});
    }
    return p;
  }

  /**
   * A batch no run of this build waits for (the manifest no longer makes any of its requests),
   * asked once whether it is done and never waited for: a settled one's files are read and its
   * answers (paid for) stored by UnwantedLines' rules ("done", with how it ended); one still
   * running is left for a later build to ask again; one unknown to the key in use (HTTP 404) is
   * the user's to decide on (see `unknown`). "unasked": it could not be asked or read (the endpoint
   * down, refusing, or silent for IDLE_ASK_MS), and why. It never stops the build, and rides out
   * no outage: a later build asks again.
   */
  async collectIdle(client: OpenAIBatches, step: GenerateStep, rec: BatchRecord): Promise<IdleOutcome> {
    const id = rec.batch_id!;
    const ask = new AbortController();
    const onAbort = () => ask.abort();
    this.signal.addEventListener("abort", onAbort, { once: true });
    let silent = false;
    const timer = setTimeout(() => {
      silent = true;
      ask.abort();
    }, IDLE_ASK_MS);
    let view: BatchView;
    try {
      view = await client.retrieve(id, ask.signal, likeOf(step));
    } catch (err) {
      if (silent) return { unasked: `no answer within ${duration(IDLE_ASK_MS)}` };
      if (err instanceof RequestError && err.status === 404) return { unknown: true };
      if (err instanceof RequestError) return { unasked: this.resolver.redact(err.message) };
      throw err;
    } finally {
      clearTimeout(timer);
      this.signal.removeEventListener("abort", onAbort);
    }
    if (!SETTLED.has(view.status)) return { running: view.status };
    try {
      const p = this.collect(client, step, rec, view);
      this.settling.set(rec.input_file_id, p);
      const s = await p.finally(() => this.settling.delete(rec.input_file_id));
      return s && "lines" in s ? { done: view.status, why: view.errors.join("; ") } : { unasked: "interrupted" };
    } catch (err) {
      if (err instanceof RequestError || err instanceof BatchCallFailed || err instanceof SynthbuildError)
        return { unasked: this.resolver.redact(err.message) };
      throw err;
    }
  }

  /** `idle`: a batch no run waits for, settled as this view says (see collectIdle): its files read without riding out an outage. */
  private async collect(client: OpenAIBatches, step: GenerateStep, rec: BatchRecord, idle?: BatchView): Promise<Settled | undefined> {
    const like = likeOf(step);
    let view: BatchView | undefined = idle;
    if (!rec.batch_id) {
      // Killed between upload and create (or its claim lost there): created holding the claim,
      // unless another build has meanwhile.
      const made = await this.createPending(client, step, rec, like);
      if (made === undefined) return undefined;
      if (made === "gone") return { gone: true };
      if (made !== "recorded") view = made;
    }
    // The id recorded, not the one an answer repeats: only the recorded one was checked for secrets.
    const id = rec.batch_id!;
    let delay = this.limits.pollMs;
    let said = "";
    const giveUpAt = Date.now() + this.limits.giveUpMs;
    for (;;) {
      if (view) {
        const now = `${view.status} ${view.counts.completed + view.counts.failed}/${view.counts.total}`;
        if (now !== said) this.events.batch?.({ step: step.id, id, status: view.status, ...view.counts });
        said = now;
        if (SETTLED.has(view.status)) break;
        if (Date.now() >= giveUpAt) {
          // Past its completion window and then some: this build stops waiting; nothing fails,
          // the record stays, and the next build resumes the batch.
          this.givenUp.add(rec.input_file_id);
          this.events.warn?.(
            `batch ${id} (step '${step.id}') is still ${view.status} after ${Math.round(this.limits.giveUpMs / 60_000)} min: this build stops waiting for it; its ${rec.custom_ids.length} request(s) are left pending, and the next build resumes the batch`,
          );
          return undefined;
        }
        try {
          await sleep(delay, this.signal);
        } catch {
          return undefined;
        }
        delay = Math.min(delay * 1.5, this.limits.maxPollMs);
      }
      try {
        view = await this.patiently(step, id, () => client.retrieve(id, this.signal, like));
      } catch (err) {
        if (!(err instanceof BatchCallFailed && err.status === 404)) throw err;
        // A 404 is this batch's (another key's or account's, or long gone) or the whole API's
        // (none at this address any more): a page of the list tells which. The second stops the
        // build (the probe's 404 is a refusal of the endpoint); the first never resubmits the
        // batch by itself (see `unknown`).
        if (!(await this.patiently(step, id, () => client.probe(like, this.signal).then(() => true)))) return undefined;
        return { unknown: this.unknown(step, rec, id) };
      }
      if (!view) return undefined;
    }
    const lines = new Map<string, LineOutcome>();
    const seen = new Set<string>();
    const spare = new UnwantedLines(this.resolver, this.cacheDir, rec, id);
    const read = async (fileId: string | undefined) => {
      if (!fileId) return true;
      try {
        // Read again from the start if it breaks off; the lines already taken are skipped.
        return (
          (await this.patiently(
            step,
            id,
            () => this.takeLines(client.results(fileId, this.signal), lines, seen, id, spare),
            () => seen.size,
            idle !== undefined,
          )) ?? false
        );
      } catch (err) {
        // The file is gone for good (404, 410): its requests are found missing and asked again in
        // a new batch, and this one's record goes; a build never stays blocked on it.
        if (err instanceof BatchCallFailed && (err.status === 404 || err.status === 410)) return true;
        throw err;
      }
    };
    if (!(await read(view.outputFileId)) || !(await read(view.errorFileId))) return undefined;
    if (view.status === "failed") {
      const why = view.errors.join("; ") || "no reason given";
      // The organisation's enqueued-token limit: not this batch's fault; it may go once others finish.
      if (view.errorCodes.length && view.errorCodes.every((c) => c === "token_limit_exceeded"))
        this.unfinished(rec, lines, `batch ${id} was refused (${why})`, true, true, Requeue);
      else this.unfinished(rec, lines, `batch ${id} failed: ${why}`, false);
    }
    // A request a batch never ran is asked for again, in a batch of its own: the build asks for
    // every answer it lacks (a person who wants it to stop presses Ctrl-C).
    else if (view.status === "expired") this.unfinished(rec, lines, `batch ${id} expired before this request was run`, true, true);
    else if (view.status === "cancelled") this.unfinished(rec, lines, `batch ${id} was cancelled before this request was run`, true, true);
    this.unfinished(rec, lines, `no result for this request in batch ${id}`, true);
    return { id, lines };
  }

  /**
   * A 404 for a recorded batch, while the endpoint's Batches API answers, says only that this key
   * cannot see it: made under another key or account (a switched OPENAI_API_KEY, another
   * project), it still runs and is paid for there, and a gateway that lost track of it may still
   * have it upstream. Resubmitting would pay twice, so only the user may decide that it is gone:
   * its samples fail with how to decide, told once as a warning too. The message for its samples.
   */
  private unknown(step: GenerateStep, rec: BatchRecord, id: string): string {
    const url = displayUrl(this.pool.batchConfig(step).baseUrl || OPENAI_URL);
    const why = `batch ${id} (step '${step.id}') is unknown to ${url} (HTTP 404): its request is not sent again`;
    if (!this.toldUnknown.has(id)) {
      this.toldUnknown.add(id);
      this.events.warn?.(
        `batch ${id} (step '${step.id}', ${rec.custom_ids.length} request(s), submitted ${rec.created_at}) is unknown to ${url} (HTTP 404). It may have been made under another API key or account, where it still runs and is paid for, so its requests are not sent again. Build with the key that submitted it to collect its answers, or run \`synthbuild status --forget ${id}\` to let it go and submit its requests again (paid twice if it still finishes elsewhere)`,
      );
    }
    return this.resolver.redact(`${why}; build with the key that submitted it, or \`synthbuild status --forget ${id}\` to submit it again`);
  }

  /**
   * Every wanted request of `rec` the files did not answer gets `why` (and is told unanswered);
   * `unrun`: so does one whose error line says the batch never ran it.
   */
  private unfinished(
    rec: BatchRecord,
    lines: Map<string, LineOutcome>,
    why: string,
    retryable: boolean,
    unrun = false,
    as: new (m: string, r: boolean) => RequestError = RequestError,
  ): void {
    for (const k of rec.custom_ids) {
      const item = this.itemFor(k);
      if (!item) continue;
      const l = lines.get(k);
      if (!l) this.resolver.told.onUnanswered?.(item.step, item.req);
      else if (!(unrun && isUnrun(l))) continue;
      lines.set(k, { error: new as(why, retryable) });
    }
  }

  /**
   * A call that collects a batch already paid for: a poll, a read of its files. A failure that may
   * pass (no connection, no answer, 408/409/429/5xx, a download that broke off) is ridden out with
   * backoff up to maxPollMs, for up to limits.outageMs (model.retries is for one request, and a
   * minute's blip must not stop a build that waits hours): the endpoint is said to be down once,
   * after outageWarnMs, and the build stops only when the outage is spent, the batch left running
   * and its record kept for the next build. `progress`: when it moves, the outage starts over (a
   * long download that broke off after some lines is not an endpoint that is down). A refusal of
   * the whole endpoint stops the build at once. Undefined when interrupted.
   */
  private async patiently<T>(step: GenerateStep, batchId: string, fn: () => Promise<T>, progress?: () => number, idle = false): Promise<T | undefined> {
    let downSince: number | undefined;
    let moved = progress?.();
    let delay = Math.min(this.limits.pollMs, 1000);
    for (;;) {
      if (this.signal.aborted) return undefined;
      try {
        return await fn();
      } catch (err) {
        if (this.signal.aborted) return undefined;
        // A batch no run waits for is asked again by a later build: nothing is ridden out or stopped for it.
        if (idle && err instanceof RequestError) throw new BatchCallFailed(this.resolver.redact(err.message), err.status);
        if (err instanceof EndpointRefused) throw this.refused(step, err);
        if (err instanceof SynthbuildError) throw err;
        const e = err as RequestError;
        if (!e.retryable) throw new BatchCallFailed(this.resolver.redact(e.message), e.status);
        const now = Date.now();
        if (progress && progress() !== moved) {
          moved = progress();
          downSince = undefined;
        }
        downSince ??= now;
        const down = now - downSince;
        if (down >= this.limits.outageMs)
          throw this.stop(step, "batch-outage", `${duration(down)} (${e.message}); batch ${batchId} (step '${step.id}') is left running there`);
        const url = endpointOf(step);
        if (down >= this.limits.outageWarnMs && !this.saidDown.has(url)) {
          this.saidDown.add(url);
          this.events.warn?.(
            this.resolver.redact(
              `the Batch API at ${url} has not answered for ${duration(down)} (${e.message}): batch ${batchId} (step '${step.id}') is paid for and keeps running there, so this build keeps asking, for up to ${duration(this.limits.outageMs)}`,
            ),
          );
        }
        try {
          // A retry-after is heeded up to the longest poll wait: `retry-after: 86400` never sleeps a day.
          await sleep(Math.min(e.retryAfterMs ?? delay, this.limits.maxPollMs), this.signal);
        } catch {
          return undefined;
        }
        delay = Math.min(delay * 2, this.limits.maxPollMs);
      }
    }
  }

  /** Stop the build with this problem of the Batch API (`detail` redacted here). */
  stop(step: GenerateStep, problem: StopProblem, detail: string): EndpointError {
    const e = endpointError(problem, this.resolver.redact(detail), step, undefined, this.pool.batchConfig(step));
    this.resolver.stopWith(e);
    return e;
  }

  /** A refusal of the whole endpoint, as the error that stops the build. */
  refused(step: GenerateStep, err: EndpointRefused): EndpointError {
    return this.stop(step, err.problem === "path" ? "batch-path" : err.problem, `${err.message} (the Batch API: model.mode ${step.model.mode})`);
  }

  /**
   * The batch the endpoint made over `rec`'s input file, recorded. Its id is written to disk
   * (cache/state, the lock): one that holds a secret is refused whole instead, the batch cancelled
   * and its record dropped, so no state names a batch that cannot be written down.
   */
  async recordBatch(client: OpenAIBatches, step: GenerateStep, rec: BatchRecord, view: BatchView): Promise<void> {
    if (this.holdsSecret(view.id)) {
      await client.cancel(view.id).catch(() => {});
      await client.deleteFile(rec.input_file_id).catch(() => {});
      await removeBatchRecord(this.cacheDir, rec.input_file_id);
      forget(await this.records(), rec);
      throw this.stop(step, "batch-secret", "id of the batch it created (the batch is cancelled)");
    }
    rec.batch_id = view.id;
    await writeBatchRecord(this.cacheDir, rec);
  }

  /** Whether an id the endpoint gave holds one of the build's secrets (or the shape of a key). */
  holdsSecret(id: string): boolean {
    return this.resolver.redact(id) !== id;
  }

  /**
   * A call to the Files or Batches API, retried with backoff while it may pass (model.retries
   * times); a refusal that concerns the whole endpoint stops the build. Undefined when interrupted.
   */
  async endpoint<T>(step: GenerateStep, fn: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.signal.aborted) return undefined;
      try {
        return await fn();
      } catch (err) {
        if (this.signal.aborted) return undefined;
        if (err instanceof EndpointRefused) throw this.refused(step, err);
        if (err instanceof SynthbuildError) throw err;
        const e = err as RequestError;
        if (e instanceof NoResponse && attempt >= step.model.retries) {
          // As for direct requests: an endpoint that never answers concerns the whole build.
          const detail = `${e.message} (${attempt + 1} attempts at the Batch API in a row)`;
          const stop = endpointError(e.kind === "connect" ? "unreachable" : "no-answer", this.resolver.redact(detail), step);
          this.resolver.stopWith(stop);
          throw stop;
        }
        if (!e.retryable || attempt >= step.model.retries) throw new BatchCallFailed(this.resolver.redact(e.message), e.status);
        try {
          // A retry-after is heeded up to the longest poll wait: `retry-after: 86400` never sleeps a day.
          await sleep(Math.min(e.retryAfterMs ?? Math.min(this.limits.pollMs, 1000) * 2 ** attempt, this.limits.maxPollMs), this.signal);
        } catch {
          return undefined;
        }
      }
    }
  }

  /** A line's answer as the pipeline takes it: stored (answers, even ones then dropped, are paid for), or the error it stands for. */
  private async take(item: BatchItem, answer: ProviderAnswer, batchId: string): Promise<LineOutcome> {
    const a: ProviderAnswer = { ...answer, batch: batchId };
    const pricing = this.resolver.told.beforePaid?.();
    if (pricing) await pricing;
    this.resolver.told.onPaid?.(item.step, item.req, a, false);
    const error = answerProblem(a, item.req, item.step.retryEmpty === true);
    if (error) return { error };
    return { answer: await this.resolver.store(item.key, item.req, item.sample, item.step, a, { offline: false, started: Date.now() }) };
  }

  /**
   * A file's lines taken as they arrive: each answer validated and stored (STORE_WIDTH at once:
   * one by one, 2,000 writes cost seconds), each failure kept. A key in `seen` (the file read
   * again after it broke off) is skipped; an answer no run of this build wants is stored by
   * `spare`'s rules (UnwantedLines), its outcome not kept.
   */
  private async takeLines(
    lines: AsyncIterable<BatchLineResult>,
    into: Map<string, LineOutcome>,
    seen: Set<string>,
    batchId: string,
    spare: UnwantedLines,
  ): Promise<true> {
    const busy = new Set<Promise<void>>();
    let failed: { err: unknown } | undefined;
    try {
      for await (const l of lines) {
        if (failed) break;
        if (seen.has(l.key)) continue;
        const item = this.itemFor(l.key);
        if (!item && !("answer" in l && spare.covers(l.key))) continue;
        seen.add(l.key);
        let work: Promise<void>;
        if (!item) work = spare.keep(l);
        else if ("error" in l) {
          this.resolver.told.onUnanswered?.(item.step, item.req);
          into.set(l.key, { error: l.error });
          continue;
        } else work = this.take(item, l.answer, batchId).then((r) => void into.set(l.key, r));
        const p: Promise<void> = work.catch((err) => void (failed ??= { err }));
        busy.add(p);
        void p.finally(() => busy.delete(p));
        if (busy.size >= STORE_WIDTH) await Promise.race(busy);
      }
    } finally {
      await Promise.all(busy);
    }
    if (failed) throw failed.err;
    return true;
  }
}

/**
 * The answers of a collected batch that no request of this build asks for (its manifest changed
 * since the batch was made): paid for, so stored all the same as their lines arrive, so that an
 * edit back costs nothing. Each under the key of the request written beside the record (its key
 * computed again: a request that does not give its custom_id is not trusted), and validated as
 * any answer is; one that would not be kept for a sample is not kept here. Only the record's own
 * keys are kept; the requests side file is read once, when the first such line arrives.
 */
class UnwantedLines {
  private readonly keys: Set<string>;
  private reqs?: Promise<Map<string, ChatRequest>>;

  constructor(
    private readonly resolver: BuildResolver,
    private readonly cacheDir: string,
    private readonly rec: BatchRecord,
    private readonly batchId: string,
  ) {
    this.keys = new Set(rec.custom_ids);
  }

  covers(key: string): boolean {
    return this.keys.has(key);
  }

  async keep(l: BatchLineResult): Promise<void> {
    if (!("answer" in l) || !this.keys.has(l.key)) return;
    const req = (await this.requests()).get(l.key);
    if (!req) return;
    const a: ProviderAnswer = { ...l.answer, batch: this.batchId };
    if (!answerProblem(a, req, this.rec.retry_empty === true)) await this.resolver.keep(l.key, req, a);
  }

  private requests(): Promise<Map<string, ChatRequest>> {
    this.reqs ??= readBatchRequests(this.cacheDir, this.rec.input_file_id).then((all) => {
      const byKey = new Map<string, ChatRequest>();
      for (const req of all) {
        const key = requestKey(req);
        if (this.keys.has(key)) byKey.set(key, req);
      }
      return byKey;
    });
    return this.reqs;
  }
}

/** Why an answer is not taken (json_schema, `on_empty: retry`), as for a direct answer; undefined when it is. */
function answerProblem(a: ProviderAnswer, req: ChatRequest, retryEmpty: boolean): RequestError | undefined {
  try {
    if (!dropReason(a)) {
      if (req.json_schema) validateJsonAnswer(a.text, req.json_schema, true);
    } else if (retryEmpty && isRetryableEmpty(a)) throw new RequestError("empty answer (on_empty: retry)", true);
  } catch (err) {
    return err as RequestError;
  }
  return undefined;
}

/** A request of the step, for calls whose refusal of the whole endpoint must say so (OpenAIBatches). */
function likeOf(step: GenerateStep): ChatRequest {
  return { model: step.model.name, messages: [], params: {}, provider: step.model.provider, endpoint: step.model.endpoint } as ChatRequest;
}

/** Two steps may wait on one batch (the same request in both): the second finds it gone already. */
export function forget(records: BatchRecord[], r: BatchRecord): void {
  const at = records.indexOf(r);
  if (at !== -1) records.splice(at, 1);
}

/** A call to the Files or Batches API that failed past its retries: the step's requests fail (and are asked for again next build). */
export class BatchCallFailed extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

/** An error file's line for a request the batch never ran (expired, cancelled). */
function isUnrun(l: LineOutcome): boolean {
  return "error" in l && /^batch_(expired|cancelled)\b/.test(l.error.message);
}

/** A wait as it is told: "40 s", "3 min". */
export function duration(ms: number): string {
  return ms < 90_000 ? `${Number((ms / 1000).toFixed(ms < 10_000 ? 1 : 0))} s` : `${Math.round(ms / 60_000)} min`;
}
