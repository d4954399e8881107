import { type Claim, claimPath, withClaim } from "../cache/batch-claim.js";
import { type BatchRecord, readBatchRecord, readBatchRecords, removeBatchRecord, writeBatchRecord, writeBatchRequests } from "../cache/batch-state.js";
import { SynthbuildError } from "../errors.js";
import type { BuildEvents } from "../events.js";
import type { Sample } from "../expand/sample.js";
import type { GenerateStep, Step } from "../manifest/types.js";
import type { Answer } from "../plan/pipeline.js";
import type { ChatRequest } from "../plan/request.js";
import { BATCH_MAX_BYTES, BATCH_MAX_LINES, type BatchView, batchLine } from "../providers/batch-format.js";
import type { OpenAIBatches } from "../providers/openai-batch.js";
import { RequestError } from "../providers/types.js";
import { displayUrl } from "../util/redact.js";
import { sleep } from "../util/sleep.js";
import { BatchCollector, duration, forget, type IdleOutcome, Requeue } from "./batch-collect.js";
import { OPENAI_URL } from "./endpoint-errors.js";
import type { ProviderPool } from "./providers.js";
import type { BuildResolver } from "./resolver.js";

export { BatchCallFailed } from "./batch-collect.js";

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
  /**
   * How long polling (and reading a batch's files) rides out an endpoint that does not answer
   * before the build stops; after outageWarnMs it says so, once.
   */
  outageMs: number;
  outageWarnMs: number;
  /** The first wait before a batch refused for the enqueued-token limit goes again; it doubles, up to 16 times this. */
  requeueMs: number;
}

/** Times a batch refused for the organisation's enqueued-token limit is submitted again before its requests fail. */
const MAX_REQUEUES = 8;

/**
 * The Batch API's limits per input file, and how often to poll. SYNTHBUILD_BATCH_MAX_LINES and
 * SYNTHBUILD_BATCH_MAX_BYTES lower the per-file limits (for tests: they can only be lowered);
 * SYNTHBUILD_BATCH_POLL_MS sets the first poll's wait (default 5 s; polls back off to
 * SYNTHBUILD_BATCH_MAX_POLL_MS, default 60 s, which also caps a retry-after);
 * SYNTHBUILD_BATCH_GIVE_UP_MS how long a build waits for one batch (default 25 h: the 24 h
 * completion window and an hour's slack); SYNTHBUILD_BATCH_OUTAGE_MS how long polls ride out an
 * endpoint that does not answer (default 30 min), SYNTHBUILD_BATCH_OUTAGE_WARN_MS when that is
 * said (default 1 min); SYNTHBUILD_BATCH_REQUEUE_MS the first wait before a batch refused for the
 * enqueued-token limit goes again (default 1 min).
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
    outageMs: num("SYNTHBUILD_BATCH_OUTAGE_MS", 30 * 60_000),
    outageWarnMs: num("SYNTHBUILD_BATCH_OUTAGE_WARN_MS", 60_000),
    requeueMs: num("SYNTHBUILD_BATCH_REQUEUE_MS", 60_000),
  };
}

/**
 * A step's requests through the Batch API: resumed from the batches this cache is already
 * waiting for (cache/state/batches), the rest split into input files within the API's limits,
 * uploaded, created, polled with backoff (BatchCollector); answers validated as a direct answer is
 * (json_schema, on_empty: retry), stored under the request's own cache key through the same path
 * as the output file streams in, and lines that failed resubmitted alone, up to model.retries
 * times; a batch the enqueued-token limit refused goes again later. What is pending is decided
 * and submitted holding the cache's claim for the endpoint and model (cache/batch-claim.ts), so
 * that builds sharing the cache folder wait for each other's batches rather than submit their own.
 */
export class BatchRunner {
  private records?: Promise<BatchRecord[]>;
  private readonly collector: BatchCollector;
  private toldWaiting = false;

  constructor(
    private readonly resolver: BuildResolver,
    private readonly pool: ProviderPool,
    private readonly cacheDir: string,
    private readonly signal: AbortSignal,
    private readonly limits: BatchLimits,
    private readonly events: BuildEvents = {},
    /** The manifest's path, recorded in each batch this build submits (see collectIdle). */
    private readonly manifest?: string,
  ) {
    this.collector = new BatchCollector(
      resolver,
      pool,
      cacheDir,
      signal,
      limits,
      events,
      () => this.loaded(),
      (client, step, rec, like) => this.createPending(client, step, rec, like),
    );
  }

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

  /**
   * After the build's own work (its release written), the batches it did not wait for, none of
   * whose requests the manifest makes now (it changed since they were submitted): each is asked
   * once whether it is done, never waited for. A settled one's answers are stored, paid for as
   * they are (an edit back costs nothing), and its record forgotten; one still running is said,
   * with how to stop paying for it. It is asked with the client of a step at its endpoint (the
   * one it was made for if it is still there): the model may have been edited too. One with no
   * step at its endpoint cannot be asked (`status` says so). An endpoint that cannot be asked once
   * is not asked again in this build. How many of this manifest's are left for a later build to
   * ask again; another manifest's sharing the cache (a checkout, a project) are its own to wait for.
   */
  async collectIdle(steps: readonly Step[]): Promise<number> {
    const records = await this.loaded();
    const unasked = new Map<string, string>();
    let left = 0;
    for (const r of [...records]) {
      if (this.signal.aborted) return left + 1;
      const here = steps.filter((s): s is GenerateStep => s.kind === "generate" && s.model.endpoint === r.endpoint);
      const step = here.find((s) => s.id === r.step) ?? here.find((s) => s.model.name === r.model) ?? here[0];
      if (!step || !r.batch_id) continue;
      const mine = r.manifest === undefined || r.manifest === this.manifest;
      const what = `batch ${r.batch_id} (step '${r.step}', ${r.custom_ids.length} request(s), submitted ${r.created_at}${mine ? "" : ` by the build of ${r.manifest}`})`;
      if (this.collector.givenUp.has(r.input_file_id)) {
        left += mine ? 1 : 0;
        continue;
      }
      let got: IdleOutcome;
      const before = unasked.get(r.endpoint);
      if (before !== undefined) got = { unasked: before };
      else
        try {
          got = await this.collector.collectIdle(await this.pool.batchesFor(step), step, r);
        } catch (err) {
          // No key for it (a CI job with no secrets builds what is cached): not a failure of the build.
          if (!(err instanceof SynthbuildError)) throw err;
          got = { unasked: err.message };
        }
      if ("done" in got) {
        await removeBatchRecord(this.cacheDir, r.input_file_id);
        forget(records, r);
        this.events.decided?.(
          got.done === "failed"
            ? `${what} failed (${this.resolver.redact(got.why) || "no reason given"}): it answered nothing, and its record goes`
            : `${what} is ${got.done}: what it answered, which this manifest no longer asks for, is stored in the cache`,
        );
        continue;
      }
      if (!mine) {
        this.events.decided?.(`${what} is not this manifest's, nor any of its requests: left to the build that made it`);
        continue;
      }
      left++;
      if ("running" in got)
        this.events.warn?.(
          this.resolver.redact(
            `${what} is still ${got.running}, though this manifest no longer makes its requests: a later build stores its answers once it is done (they are paid for); \`synthbuild status --cancel\` cancels it, with every other batch of this cache still running`,
          ),
        );
      else if ("unknown" in got)
        this.events.warn?.(
          `${what} is unknown to ${this.url(step)} under the key in use (HTTP 404), and this manifest no longer makes its requests. It may have been made under another API key or account, where it runs and is paid for: build with the key that submitted it to collect its answers, or run \`synthbuild status --forget ${r.batch_id}\` to let it go`,
        );
      else if (!unasked.has(r.endpoint)) {
        unasked.set(r.endpoint, got.unasked);
        this.events.warn?.(
          `could not ask ${this.url(step)} whether ${what}, which this manifest no longer asks anything of, is done (${got.unasked}): a later build asks again`,
        );
      }
    }
    return left;
  }

  private url(step: GenerateStep): string {
    return displayUrl(this.pool.batchConfig(step).baseUrl || OPENAI_URL);
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
    for (const r of [...records]) if (!ids.has(r.input_file_id) && !this.collector.isSettling(r.input_file_id)) forget(records, r);
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
    // Keys of batches refused for the enqueued-token limit, and why: they go again after a wait.
    const requeued = new Set<string>();
    let requeue: Requeue | undefined;
    let requeues = 0;
    while (want.size && !this.signal.aborted) {
      if (requeued.size && !(await this.requeue(step, requeued, requeue!, ++requeues, want, outcomes))) break;
      this.collector.want(want.values());
      let lost = false;
      const waiting = await this.claimed(step, async (claim) => {
        await this.refresh();
        // A key already in a pending batch is waited for there, never put in a second one.
        const mine = (r: BatchRecord) => r.endpoint === step.model.endpoint && r.model === step.model.name && r.custom_ids.some((k) => want.has(k));
        // A batch given up on still covers its keys (they are not sent again) but is not waited for.
        const resumed = records.filter((r) => mine(r) && !this.collector.givenUp.has(r.input_file_id));
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
      // Each batch's answers are stored as its files are read, not when the last batch is done.
      await Promise.all(
        waiting.map(async (rec) => {
          const s = await this.collector.settle(client, step, rec);
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
          for (const key of rec.custom_ids) {
            const item = want.get(key);
            if (!item) continue;
            let r = s.lines.get(key);
            if (!r) {
              // Wanted only after the batch's files were read (by another step's run meanwhile).
              this.resolver.told.onUnanswered?.(item.step, item.req);
              r = { error: new RequestError(`no result for this request in batch ${s.id}`, true) };
            }
            if ("answer" in r) {
              outcomes.set(key, { answer: r.answer });
              want.delete(key);
              continue;
            }
            if (r.error instanceof Requeue) {
              requeued.add(key);
              requeue = r.error;
              continue;
            }
            const tries = (attempts.get(key) ?? 0) + 1;
            attempts.set(key, tries);
            if (!r.error.retryable || tries > step.model.retries) {
              const message = this.resolver.redact(`${r.error.message} (batch ${s.id}${tries > 1 ? `, ${tries} attempts` : ""})`);
              outcomes.set(key, { failed: message });
              want.delete(key);
            }
          }
          // Its answers are in the cache: only now may the batch be forgotten.
          await removeBatchRecord(this.cacheDir, rec.input_file_id);
          forget(records, rec);
        }),
      );
    }
    this.collector.unwant(items);
    for (const key of want.keys()) outcomes.set(key, { held: true });
    return outcomes;
  }

  /**
   * Before the keys of a batch the enqueued-token limit refused go again: a wait that doubles
   * each time (the limit frees as batches already queued finish), said with why; past
   * MAX_REQUEUES they fail (and are asked again next build). False: interrupted while waiting.
   */
  private async requeue(
    step: GenerateStep,
    keys: Set<string>,
    why: Requeue,
    n: number,
    want: Map<string, BatchItem>,
    outcomes: Map<string, BatchOutcome>,
  ): Promise<boolean> {
    const count = keys.size;
    if (n > MAX_REQUEUES) {
      const message = this.resolver.redact(
        `${why.message} (submitted ${n} times over ${duration(this.requeueWait(n - 1, true))}: the organisation's enqueued-token limit for ${step.model.name} stayed full)`,
      );
      for (const k of keys) {
        outcomes.set(k, { failed: message });
        want.delete(k);
      }
      keys.clear();
      return true;
    }
    keys.clear();
    const wait = this.requeueWait(n);
    this.events.warn?.(
      this.resolver.redact(
        `${why.message}: the organisation's enqueued-token limit for ${step.model.name} is full (batches already queued hold it); its ${count} request(s) (step '${step.id}') go again in a new batch in ${duration(wait)} (${n} of ${MAX_REQUEUES})`,
      ),
    );
    try {
      await sleep(wait, this.signal);
    } catch {
      return false;
    }
    return true;
  }

  /** The n-th wait before a requeue; `total`: the first n waits together. */
  private requeueWait(n: number, total = false): number {
    const one = (i: number) => Math.min(this.limits.requeueMs * 2 ** (i - 1), this.limits.requeueMs * 16);
    if (!total) return one(n);
    let sum = 0;
    for (let i = 1; i <= n; i++) sum += one(i);
    return sum;
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
    if (this.collector.holdsSecret(fileId)) {
      // Never named in cache/state (a record is named by its input file): the file goes unused.
      await client.deleteFile(fileId).catch(() => {});
      throw this.collector.stop(step, "batch-secret", "id of the input file it stored");
    }
    if (!(await claim.holds())) return "lost";
    const rec: BatchRecord = {
      input_file_id: fileId,
      endpoint: step.model.endpoint,
      model: step.model.name,
      step: step.id,
      custom_ids: chunk.items.map((i) => i.key),
      created_at: new Date().toISOString(),
      ...(step.retryEmpty ? { retry_empty: true as const } : {}),
      ...(this.manifest !== undefined ? { manifest: this.manifest } : {}),
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
    await this.collector.recordBatch(client, step, rec, view);
    for (const i of chunk.items) this.resolver.told.onStart?.(i.step);
    return rec;
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
        // Its id checked for secrets before it is written (the record dropped if it holds one).
        await this.collector.recordBatch(client, step, rec, view);
        return view;
      });
      if (made !== "lost") return made;
    }
  }

  /** A call to the Files or Batches API on one request's retries (see BatchCollector.endpoint). */
  private endpoint<T>(step: GenerateStep, fn: () => Promise<T>): Promise<T | undefined> {
    return this.collector.endpoint(step, fn);
  }
}
