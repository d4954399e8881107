import { type Claim, claimPath, withClaim } from "../cache/batch-claim.js";
import {
  type BatchRecord,
  readBatchRecord,
  readBatchRecords,
  readBatchRequests,
  removeBatchRecord,
  writeBatchRecord,
  writeBatchRequests,
} from "../cache/batch-state.js";
import { SynthbuildError } from "../errors.js";
import type { BuildEvents } from "../events.js";
import type { Sample } from "../expand/sample.js";
import type { GenerateStep } from "../manifest/types.js";
import { dropReason, isRetryableEmpty } from "../plan/answer-drops.js";
import { type Answer, forEachConcurrent } from "../plan/pipeline.js";
import { type ChatRequest, requestKey } from "../plan/request.js";
import { BATCH_MAX_BYTES, BATCH_MAX_LINES, type BatchView, batchLine, SETTLED } from "../providers/batch-format.js";
import type { BatchLineResult, OpenAIBatches } from "../providers/openai-batch.js";
import { EndpointRefused, NoResponse, type ProviderAnswer, RequestError } from "../providers/types.js";
import { displayUrl } from "../util/redact.js";
import { sleep } from "../util/sleep.js";
import { endpointError, OPENAI_URL } from "./endpoint-errors.js";
import { validateJsonAnswer } from "./json-answer.js";
import type { ProviderPool } from "./providers.js";
import type { BuildResolver } from "./resolver.js";

/** Answers of a batch stored at once. */
const STORE_WIDTH = 64;

/** One request a batch is to answer. */
export interface BatchItem {
  key: string;
  req: ChatRequest;
  sample: Sample;
  step: GenerateStep;
}

/** What became of a request sent by batch: its answer, why it failed (after its resubmissions), or nothing yet (interrupted, held back). */
export type BatchOutcome = { answer: Answer } | { failed: string } | { held: true };

export interface BatchLimits {
  maxLines: number;
  maxBytes: number;
  /** The first poll's wait; each later one waits 1.5 times longer, up to maxPollMs. */
  pollMs: number;
  maxPollMs: number;
  /** How long one build waits for a batch before it leaves it for the next build. */
  giveUpMs: number;
}

/**
 * The Batch API's limits per input file, and how often to poll. SYNTHBUILD_BATCH_MAX_LINES and
 * SYNTHBUILD_BATCH_MAX_BYTES lower the per-file limits (for tests: they can only be lowered);
 * SYNTHBUILD_BATCH_POLL_MS sets the first poll's wait (default 5 s; polls back off to
 * SYNTHBUILD_BATCH_MAX_POLL_MS, default 60 s, which also caps a retry-after);
 * SYNTHBUILD_BATCH_GIVE_UP_MS how long a build waits for one batch (default 25 h: the 24 h
 * completion window and an hour's slack).
 */
export function batchLimits(env: NodeJS.ProcessEnv): BatchLimits {
  const num = (name: string, dflt: number, max = Infinity) => {
    const n = Number(env[name]);
    return Number.isFinite(n) && n > 0 ? Math.min(n, max) : dflt;
  };
  const pollMs = num("SYNTHBUILD_BATCH_POLL_MS", 5000);
  return {
    maxLines: num("SYNTHBUILD_BATCH_MAX_LINES", BATCH_MAX_LINES, BATCH_MAX_LINES),
    maxBytes: num("SYNTHBUILD_BATCH_MAX_BYTES", BATCH_MAX_BYTES, BATCH_MAX_BYTES),
    pollMs,
    maxPollMs: Math.max(pollMs, num("SYNTHBUILD_BATCH_MAX_POLL_MS", 60_000)),
    giveUpMs: num("SYNTHBUILD_BATCH_GIVE_UP_MS", 25 * 3600_000),
  };
}

/** A line's result once read: the provider's answer, or the error that stands for it. */
type LineResult = { answer: ProviderAnswer } | { error: RequestError };

/**
 * What became of a batch waited for: settled, with its lines; or unknown to the endpoint (a 404
 * for its id), with what to tell its samples. Undefined: interrupted, or given up on.
 */
type Settled = { view: BatchView; lines: Map<string, LineResult> } | { unknown: string } | { gone: true };

/**
 * A step's requests through the Batch API: resumed from the batches this cache is already
 * waiting for (cache/state/batches), the rest split into input files within the API's limits,
 * uploaded, created, polled with backoff; answers validated as a direct answer is (json_schema,
 * on_empty: retry), stored under the request's own cache key through the same path, and lines
 * that failed resubmitted alone, up to model.retries times. What is pending is decided and
 * submitted holding the cache's claim for the endpoint and model (cache/batch-claim.ts), so that
 * builds sharing the cache folder wait for each other's batches rather than submit their own.
 */
export class BatchRunner {
  private records?: Promise<BatchRecord[]>;
  /** Batches being waited for in this build, by input file: two steps never poll one twice. */
  /** Batches this build stopped waiting for (past limits.giveUpMs): left, with their records, to the next build. */
  private readonly givenUp = new Set<string>();
  private readonly settling = new Map<string, Promise<Settled | undefined>>();
  /** Batches unknown to the endpoint whose warning this build has given. */
  private readonly toldUnknown = new Set<string>();
  private toldWaiting = false;

  constructor(
    private readonly resolver: BuildResolver,
    private readonly pool: ProviderPool,
    private readonly cacheDir: string,
    private readonly signal: AbortSignal,
    private readonly limits: BatchLimits,
    private readonly events: BuildEvents = {},
  ) {}

  /**
   * Forget the batches whose every answer is in the cache (a build killed after storing them,
   * before removing the record): nothing is left to collect from them.
   */
  async sweep(has: (key: string) => Promise<boolean>): Promise<void> {
    const records = await this.loaded();
    for (const r of [...records])
      if ((await Promise.all(r.custom_ids.map(has))).every(Boolean)) {
        await removeBatchRecord(this.cacheDir, r.input_file_id);
        forget(records, r);
      }
  }

  /** Batches submitted and not yet collected: what an interrupted build leaves running. */
  async outstanding(): Promise<BatchRecord[]> {
    return this.records ? [...(await this.records)] : [];
  }

  /** Every key a pending batch of this cache covers: collected from that batch, whatever its step's mode now. */
  async pendingKeys(): Promise<Set<string>> {
    return new Set((await this.loaded()).flatMap((r) => r.custom_ids));
  }

  private loaded(): Promise<BatchRecord[]> {
    this.records ??= readBatchRecords(this.cacheDir);
    return this.records;
  }

  /**
   * The records as the disk has them now, holding the claim: other builds' batches made since
   * this one looked are waited for too, and a batch another build has collected (its record
   * gone) is not, its answers being in the cache. The objects this build holds are kept.
   */
  private async refresh(): Promise<BatchRecord[]> {
    const records = await this.loaded();
    const now = await readBatchRecords(this.cacheDir);
    const ids = new Set(now.map((r) => r.input_file_id));
    for (const r of [...records]) if (!ids.has(r.input_file_id) && !this.settling.has(r.input_file_id)) forget(records, r);
    for (const d of now) {
      const r = records.find((x) => x.input_file_id === d.input_file_id);
      if (!r) records.push(d);
      else r.batch_id ??= d.batch_id;
    }
    return records;
  }

  /** `fn` holding the claim of the step's endpoint and model; undefined when interrupted first. */
  private claimed<T>(step: GenerateStep, fn: (claim: Claim) => Promise<T>): Promise<T | undefined> {
    return withClaim(claimPath(this.cacheDir, step.model.endpoint, step.model.name), fn, {
      signal: this.signal,
      onWait: (h) => {
        if (this.toldWaiting) return;
        this.toldWaiting = true;
        this.events.warn?.(
          `another build sharing this cache (pid ${h.pid} on ${h.host}) is submitting a batch to ${step.model.name}: waiting for it, to wait for its batch rather than submit the same requests again`,
        );
      },
    });
  }

  /**
   * `resumeOnly`: the step does not batch in this build; only its keys a pending batch covers are
   * collected, and the others come back held (for the caller to ask directly).
   */
  async run(step: GenerateStep, items: BatchItem[], resumeOnly = false): Promise<Map<string, BatchOutcome>> {
    const outcomes = new Map<string, BatchOutcome>();
    const want = new Map(items.map((i) => [i.key, i]));
    const client = await this.pool.batchesFor(step);
    const records = await this.loaded();
    const attempts = new Map<string, number>();
    while (want.size && !this.signal.aborted) {
      let lost = false;
      const waiting = await this.claimed(step, async (claim) => {
        await this.refresh();
        // A key already in a pending batch is waited for there, never put in a second one.
        const mine = (r: BatchRecord) => r.endpoint === step.model.endpoint && r.model === step.model.name && r.custom_ids.some((k) => want.has(k));
        // A batch given up on still covers its keys (they are not sent again) but is not waited for.
        const resumed = records.filter((r) => mine(r) && !this.givenUp.has(r.input_file_id));
        const covered = new Set(records.filter(mine).flatMap((r) => r.custom_ids));
        const fresh: BatchItem[] = [];
        for (const i of want.values()) {
          if (covered.has(i.key)) continue;
          // Stored since this build looked: by another build, from a batch it collected.
          const hit = await this.resolver.stored(i.key, step);
          if (hit) {
            outcomes.set(i.key, { answer: hit });
            want.delete(i.key);
          } else if (!resumeOnly && this.resolver.allows(step, i.req, i.sample, true)) fresh.push(i);
          else {
            outcomes.set(i.key, { held: true });
            want.delete(i.key);
          }
        }
        const submitted: BatchRecord[] = [];
        for (const chunk of this.split(fresh)) {
          const rec = await this.submit(client, step, chunk, claim);
          if (rec === "lost") lost = true;
          if (!rec || rec === "lost") break;
          submitted.push(rec);
        }
        return [...resumed, ...submitted];
      });
      if (!waiting) break;
      // The claim was lost (this build slept past its lease): the keys not submitted are looked at again under a new one.
      if (!waiting.length && lost) continue;
      if (!waiting.length) break;
      // Each batch's answers are stored as soon as it is done, not when the last one is.
      await Promise.all(
        waiting.map(async (rec) => {
          const s = await this.settle(client, step, rec);
          if (!s) return;
          // Another build collected it, or it was forgotten: its keys are looked for in the cache, then submitted.
          if ("gone" in s) return forget(records, rec);
          if ("unknown" in s) {
            // Not asked again, neither by batch nor directly: the record stays, for the key that
            // made the batch to collect it, or for `status --forget` to let it go.
            for (const key of rec.custom_ids)
              if (want.has(key)) {
                outcomes.set(key, { failed: s.unknown });
                want.delete(key);
              }
            return;
          }
          const mineNow = rec.custom_ids.filter((k) => want.has(k));
          // Stored as direct answers are, many at once: one by one, 2,000 writes cost seconds.
          await forEachConcurrent(mineNow, STORE_WIDTH, async (key) => {
            const item = want.get(key)!;
            const line = s.lines.get(key) ?? { error: new RequestError(`no result for this request in batch ${s.view.id}`, true) };
            const r = await this.take(item, line, s.view.id);
            if ("answer" in r) {
              outcomes.set(key, { answer: r.answer });
              want.delete(key);
              return;
            }
            const tries = (attempts.get(key) ?? 0) + 1;
            attempts.set(key, tries);
            if (!r.error.retryable || tries > step.model.retries) {
              const message = this.resolver.redact(`${r.error.message} (batch ${s.view.id}${tries > 1 ? `, ${tries} attempts` : ""})`);
              outcomes.set(key, { failed: message });
              want.delete(key);
            }
          });
          await this.keepUnwanted(rec, s, (k) => !want.has(k) && !outcomes.has(k));
          // Its answers are in the cache: only now may the batch be forgotten.
          await removeBatchRecord(this.cacheDir, rec.input_file_id);
          forget(records, rec);
        }),
      );
    }
    for (const key of want.keys()) outcomes.set(key, { held: true });
    return outcomes;
  }

  /** A line's result as the pipeline takes it: stored (answers, even ones then dropped, are paid for), or the error. */
  private async take(item: BatchItem, line: LineResult, batchId: string): Promise<{ answer: Answer } | { error: RequestError }> {
    if ("error" in line) {
      this.resolver.told.onUnanswered?.(item.step, item.req);
      return line;
    }
    const a: ProviderAnswer = { ...line.answer, batch: batchId };
    const pricing = this.resolver.told.beforePaid?.();
    if (pricing) await pricing;
    this.resolver.told.onPaid?.(item.step, item.req, a, false);
    const error = answerProblem(a, item.req, item.step.retryEmpty === true);
    if (error) return { error };
    return { answer: await this.resolver.store(item.key, item.req, item.sample, item.step, a, { offline: false, started: Date.now() }) };
  }

  /**
   * A collected batch's answers that no request of this build asks for (`other`: not this run's
   * keys), its manifest changed since the batch was made: paid for, so stored all the same, so
   * that an edit back costs nothing. Each under the key of the request written beside the record
   * (its key computed again: a request that does not give its custom_id is not trusted), and
   * validated as any answer is; one that would not be kept for a sample is not kept here.
   */
  private async keepUnwanted(rec: BatchRecord, s: { view: BatchView; lines: Map<string, LineResult> }, other: (key: string) => boolean): Promise<void> {
    const left = rec.custom_ids.filter((k) => other(k) && s.lines.has(k) && "answer" in s.lines.get(k)!);
    if (!left.length) return;
    const reqs = new Map<string, ChatRequest>();
    const keys = new Set(left);
    for (const req of await readBatchRequests(this.cacheDir, rec.input_file_id)) {
      const key = requestKey(req);
      if (keys.has(key)) reqs.set(key, req);
    }
    await forEachConcurrent(left, STORE_WIDTH, async (key) => {
      const req = reqs.get(key);
      const line = s.lines.get(key)!;
      if (!req || !("answer" in line)) return;
      const a: ProviderAnswer = { ...line.answer, batch: s.view.id };
      if (!answerProblem(a, req, rec.retry_empty === true)) await this.resolver.keep(key, req, a);
    });
  }

  /** Input files within the per-file limits of lines and bytes. */
  private *split(items: BatchItem[]): Generator<{ items: BatchItem[]; jsonl: string }> {
    let lines: string[] = [];
    let chunk: BatchItem[] = [];
    let bytes = 0;
    for (const i of items) {
      const line = batchLine(i.key, i.req);
      const size = Buffer.byteLength(line) + 1;
      if (chunk.length && (chunk.length >= this.limits.maxLines || bytes + size > this.limits.maxBytes)) {
        yield { items: chunk, jsonl: `${lines.join("\n")}\n` };
        lines = [];
        chunk = [];
        bytes = 0;
      }
      lines.push(line);
      chunk.push(i);
      bytes += size;
    }
    if (chunk.length) yield { items: chunk, jsonl: `${lines.join("\n")}\n` };
  }

  /**
   * Upload, record, create, record again: a build killed at any point finds the batch, or its
   * input file, in the state. "lost": the claim was taken over while this build slept past its
   * lease, so the keys may be another build's now, and nothing was recorded. A record left
   * uncreated for the same reason is created by whichever build resumes it, holding the claim.
   */
  private async submit(
    client: OpenAIBatches,
    step: GenerateStep,
    chunk: { items: BatchItem[]; jsonl: string },
    claim: Claim,
  ): Promise<BatchRecord | "lost" | undefined> {
    const like = chunk.items[0]!.req;
    const fileId = await this.endpoint(step, () => client.upload(chunk.jsonl, `synthbuild-${step.id}.jsonl`, like, this.signal));
    if (fileId === undefined) return undefined;
    if (!(await claim.holds())) return "lost";
    const rec: BatchRecord = {
      input_file_id: fileId,
      endpoint: step.model.endpoint,
      model: step.model.name,
      step: step.id,
      custom_ids: chunk.items.map((i) => i.key),
      created_at: new Date().toISOString(),
      ...(step.retryEmpty ? { retry_empty: true as const } : {}),
    };
    await writeBatchRecord(this.cacheDir, rec);
    (await this.loaded()).push(rec);
    await writeBatchRequests(
      this.cacheDir,
      fileId,
      chunk.items.map((i) => i.req),
    );
    if (!(await claim.holds())) return rec;
    // A create whose answer was lost (a 502, a reset) may have made the batch all the same: a
    // retry first asks the endpoint's list for a batch over this input file, never makes a second.
    let tried = false;
    const view = await this.endpoint(step, async () => {
      if (tried) {
        const found = await client.findByInput(fileId, this.signal);
        if (found) return found;
      }
      tried = true;
      return client.create(fileId, { synthbuild_step: step.id }, like, this.signal);
    });
    if (!view) return rec;
    rec.batch_id = view.id;
    await writeBatchRecord(this.cacheDir, rec);
    for (const i of chunk.items) this.resolver.told.onStart?.(i.step);
    return rec;
  }

  /** Create the batch if the record has none yet, poll it until it settles, read its files. Undefined: interrupted. */
  private settle(client: OpenAIBatches, step: GenerateStep, rec: BatchRecord) {
    let p = this.settling.get(rec.input_file_id);
    if (!p) {
      p = this.poll(client, step, rec);
      this.settling.set(rec.input_file_id, p);
      void p.finally(() => this.settling.delete(rec.input_file_id)).catch(() => {});
    }
    return p;
  }

  private async poll(client: OpenAIBatches, step: GenerateStep, rec: BatchRecord): Promise<Settled | undefined> {
    const like = { model: step.model.name, messages: [], params: {}, provider: step.model.provider, endpoint: step.model.endpoint } as ChatRequest;
    let view: BatchView | undefined;
    if (!rec.batch_id) {
      const made = await this.createPending(client, step, rec, like);
      if (made === undefined) return undefined;
      if (made === "gone") return { gone: true };
      if (made !== "recorded") view = made;
    }
    let delay = this.limits.pollMs;
    let said = "";
    const giveUpAt = Date.now() + this.limits.giveUpMs;
    for (;;) {
      if (view) {
        const now = `${view.status} ${view.counts.completed + view.counts.failed}/${view.counts.total}`;
        if (now !== said) this.events.batch?.({ step: step.id, id: view.id, status: view.status, ...view.counts });
        said = now;
        if (SETTLED.has(view.status)) break;
        if (Date.now() >= giveUpAt) {
          // Past its completion window and then some: this build stops waiting; nothing fails,
          // the record stays, and the next build resumes the batch.
          this.givenUp.add(rec.input_file_id);
          this.events.warn?.(
            `batch ${view.id} (step '${step.id}') is still ${view.status} after ${Math.round(this.limits.giveUpMs / 60_000)} min: this build stops waiting for it; its ${rec.custom_ids.length} request(s) are left pending, and the next build resumes the batch`,
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
      const id = rec.batch_id!;
      try {
        view = await this.endpoint(step, () => client.retrieve(id, this.signal));
      } catch (err) {
        if (!(err instanceof BatchCallFailed && err.status === 404)) throw err;
        return { unknown: this.unknown(step, rec, id) };
      }
      if (!view) return undefined;
    }
    const lines = new Map<string, LineResult>();
    const read = async (fileId: string | undefined) => {
      if (!fileId) return true;
      let got: BatchLineResult[] | undefined;
      try {
        got = await this.endpoint(step, () => client.results(fileId, this.signal));
      } catch (err) {
        // The file is gone for good (404, 410): its requests are found missing and asked again in
        // a new batch, and this one's record goes; a build never stays blocked on it.
        if (err instanceof BatchCallFailed && (err.status === 404 || err.status === 410)) return true;
        throw err;
      }
      if (!got) return false;
      for (const l of got) lines.set(l.key, lineResult(l));
      return true;
    };
    if (!(await read(view.outputFileId)) || !(await read(view.errorFileId))) return undefined;
    const unfinished = (why: string, retryable: boolean) => {
      for (const k of rec.custom_ids) if (!lines.has(k) || (retryable && isUnrun(lines.get(k)!))) lines.set(k, { error: new RequestError(why, retryable) });
    };
    if (view.status === "failed") unfinished(`batch ${view.id} failed: ${view.errors.join("; ") || "no reason given"}`, false);
    // A request a batch never ran is asked for again, in a batch of its own: the build asks for
    // every answer it lacks (a person who wants it to stop presses Ctrl-C).
    else if (view.status === "expired") unfinished(`batch ${view.id} expired before this request was run`, true);
    else if (view.status === "cancelled") unfinished(`batch ${view.id} was cancelled before this request was run`, true);
    return { view, lines };
  }

  /**
   * Create the batch of a record that has none yet (a build killed between upload and create, or
   * one that lost its claim there), holding the claim and as the disk has the record now: another
   * build may have created it meanwhile ("recorded": its id is in the record now), or collected
   * it ("gone"). Undefined: interrupted.
   */
  private async createPending(
    client: OpenAIBatches,
    step: GenerateStep,
    rec: BatchRecord,
    like: ChatRequest,
  ): Promise<BatchView | "recorded" | "gone" | undefined> {
    for (;;) {
      const made = await this.claimed(step, async (claim): Promise<BatchView | "recorded" | "gone" | "lost" | undefined> => {
        const disk = await readBatchRecord(this.cacheDir, rec.input_file_id);
        if (!disk) return "gone";
        if (disk.batch_id) {
          rec.batch_id = disk.batch_id;
          return "recorded";
        }
        // Its every key in a batch made already: left uncreated by a build that lost its claim
        // after recording it, and covered since by the build that took the claim over.
        const made = new Set((await this.refresh()).flatMap((r) => (r !== rec && r.batch_id ? r.custom_ids : [])));
        if (rec.custom_ids.every((k) => made.has(k))) {
          await removeBatchRecord(this.cacheDir, rec.input_file_id);
          return "gone";
        }
        // The endpoint's list says whether a create went through before the build was killed.
        const view = await this.endpoint(step, async () => {
          const found = await client.findByInput(rec.input_file_id, this.signal);
          if (found || !(await claim.holds())) return found ?? "lost";
          return client.create(rec.input_file_id, { synthbuild_step: step.id }, like, this.signal);
        });
        if (view === undefined || view === "lost") return view;
        rec.batch_id = view.id;
        await writeBatchRecord(this.cacheDir, rec);
        return view;
      });
      if (made !== "lost") return made;
    }
  }

  /**
   * A 404 for a recorded batch says only that this key cannot see it: made under another key or
   * account (a switched OPENAI_API_KEY, another project), it still runs and is paid for there, and
   * a gateway that lost track of it may still have it upstream. Resubmitting would pay twice, so
   * only the user may decide that it is gone: its samples fail with how to decide, told once as a
   * warning too. The message for its samples.
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
   * A call to the Files or Batches API, retried with backoff while it may pass (model.retries
   * times); a refusal that concerns the whole endpoint stops the build. Undefined when interrupted.
   */
  private async endpoint<T>(step: GenerateStep, fn: () => Promise<T>): Promise<T | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.signal.aborted) return undefined;
      try {
        return await fn();
      } catch (err) {
        if (this.signal.aborted) return undefined;
        if (err instanceof EndpointRefused) {
          const e = endpointError(
            err.problem,
            this.resolver.redact(`${err.message} (the Batch API: model.mode ${step.model.mode})`),
            step,
            undefined,
            this.pool.batchConfig(step),
          );
          this.resolver.stopWith(e);
          throw e;
        }
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
}

/** Two steps may wait on one batch (the same request in both): the second finds it gone already. */
function forget(records: BatchRecord[], r: BatchRecord): void {
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

function lineResult(l: BatchLineResult): LineResult {
  return "answer" in l ? { answer: l.answer } : { error: l.error };
}

/** An error file's line for a request the batch never ran (expired, cancelled). */
function isUnrun(l: LineResult): boolean {
  return "error" in l && /^batch_(expired|cancelled)\b/.test(l.error.message);
}
