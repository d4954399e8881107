import { setMaxListeners } from "node:events";
import { hasBatchRecords } from "../cache/batch-state.js";
import { hasRoot, writeRoot } from "../cache/roots.js";
import type { Cache } from "../cache/store.js";
import { useCache } from "../cache/users.js";
import { FrozenError, InterruptedError, UsageError } from "../errors.js";
import type { BuildEvents } from "../events.js";
import { BatchRound } from "../execute/batch-round.js";
import { BatchRunner, batchLimits } from "../execute/batch-runner.js";
import { Budget } from "../execute/budget.js";
import { forecast, needsForecast, requestsBySegment } from "../execute/forecast.js";
import { ProviderPool } from "../execute/providers.js";
import { BuildResolver, CacheResolver } from "../execute/resolver.js";
import { SampleLimit } from "../execute/sample-limit.js";
import { walkWaves } from "../execute/target-waves.js";
import { type Batching, type PendingRun, type RequestWorkers, walk } from "../execute/walk.js";
import { type TargetOutcome, targetOutcome } from "../expand/target.js";
import { decide } from "../freshness/decide.js";
import { type NoopSummary, removeStamp, upToDate, writeStamp } from "../freshness/stamp.js";
import { countDrops, type DropCount } from "../lock/drops.js";
import { hashLock, type Lock, lockKeys, readLock, writeLock } from "../lock/lockfile.js";
import type { GenerateStep, Manifest, Step } from "../manifest/types.js";
import { writeCard } from "../output/card.js";
import { emit, rejectionWarnings } from "../output/emit.js";
import { assembleLock } from "../output/lock-entries.js";
import { checkOutputPaths } from "../output/preflight.js";
import { removeStaleOutputs } from "../output/read-back.js";
import { removeStrayTemps } from "../output/strays.js";
import { withAttempts } from "../plan/attempts.js";
import { batchedSteps, batches, requestsByStep } from "../plan/batch-choice.js";
import { newRun, type SampleRun } from "../plan/pipeline.js";
import { loadPrices, loadPricesWhenIdle, needsPriceBook, priceOf } from "../plan/prices.js";
import { loadTokenCounter } from "../plan/tokens.js";
import { acquireBuildLock } from "../project.js";
import { canonicalJson } from "../util/canonical-json.js";
import { initHashing } from "../util/hash.js";
import { recordedAttempts } from "./attempts.js";
import { type CommonOptions, locateProject, openProject } from "./context.js";
import { projectRemote } from "./remote.js";
import { BuildRemote, pullForFrozen, type RemoteReport } from "./remote-build.js";
import { requestEvents } from "./spend.js";

export interface BuildOptions extends CommonOptions {
  /** Make no request; fail if the cache and lock cannot produce the dataset. */
  frozen?: boolean;
  /**
   * A trial run: request answers only for the first N samples. The others are built from the
   * cache where it has them and otherwise left pending, so the lock still describes the whole
   * dataset and nothing it pinned is forgotten.
   */
  limit?: number;
  /**
   * `--shard i/n`: request only the misses of samples in shard i of n (by sample id), into the
   * cache and its remote; no dist/ and no lock are written. A last plain build assembles them.
   */
  shard?: Shard;
  /** Overrides every model's concurrency. */
  concurrency?: number;
  /** Use the built-in echo provider for every step: no key, no network. */
  offline?: boolean;
  /** Stop starting requests before this much (USD) would be spent. */
  maxCost?: number;
  /** Abort (Ctrl-C): in-flight requests are dropped, finished ones kept, and the lock written. */
  signal?: AbortSignal;
}

export interface BuildResult {
  samples: number;
  requests: number;
  cached: number;
  failed: number;
  dropped: number;
  /** Samples not built: interrupted, held back by --max-cost, or outside --limit. */
  pending: number;
  /** Of those, the ones --limit kept back on purpose (not a failure). */
  heldBack: number;
  outputs: { path: string; rows: number }[];
  failures: { sample: string; step: string; reason: string }[];
  /** Dropped samples by the step that dropped them. */
  drops: DropCount[];
  costUsd: number | null;
  /** True when --max-cost held requests back. */
  budgetReached: boolean;
  /** With a remote cache: what was fetched from it and uploaded to it. */
  remote?: RemoteReport;
  /** `--shard`: which one this build was (then no dist/ or lock was written). */
  shard?: Shard;
  /** With `target:`: rows wanted and kept, candidates used and allowed; not reached is exit 1. */
  target?: TargetOutcome;
  /** With `model.endpoints:`: the answers each replica gave in this build. */
  replicas?: { url: string; answers: number }[];
}

export async function build(opts: BuildOptions = {}): Promise<BuildResult> {
  const events = opts.events ?? {};
  const env = opts.env ?? process.env;
  const offline = opts.offline ?? false;
  await initHashing();
  const located = locateProject(opts);
  // Up to date by the stamp of the last complete build: decided without reading the manifest.
  // Not with --max-cost, whose check of the manifest's prices applies even to a no-op, nor with
  // --frozen, which reads every answer the lock names (the stamp vouches for their presence only).
  const stamp = opts.frozen
    ? { holds: false as const, why: "--frozen reads every answer the lock names" }
    : opts.maxCost === undefined
      ? await upToDate(located.file, located.paths, { offline, env })
      : { holds: false as const, why: "--max-cost checks the manifest's prices" };
  if (stamp.holds) {
    events.decided?.("up to date: nothing the last complete build's stamp lists has changed");
    for (const w of stamp.warnings) events.warn?.(w);
    return asShard(noopResult(stamp.result), opts.shard);
  }
  events.decided?.(`reading the manifest: ${stamp.why}`);
  // The manifest's own warnings are kept in the stamp, to be said again by every no-op it decides.
  const loadWarnings: string[] = [];
  const project = await openProject({ ...opts, events: { ...events, warn: (msg) => (loadWarnings.push(msg), events.warn?.(msg)) } });
  const warnings = [...loadWarnings];
  const { manifest: m, paths, cache } = project;
  const limit = opts.limit !== undefined ? new SampleLimit(opts.limit) : undefined;
  // List prices: with --max-cost every request is priced before it starts; otherwise the price
  // book (~25 ms to load) waits until the scan's requests are out (onPending below), or else the
  // first answer to price (spend.ts), so that neither the first request nor a build that requests
  // nothing waits for it.
  const needsPrices = needsPriceBook(m.steps, offline);
  if (opts.maxCost !== undefined && !opts.offline) {
    if (needsPrices) await loadPrices();
    const unpriced = m.steps.filter((s): s is GenerateStep => s.kind === "generate" && !priceOf(s.model, false));
    if (unpriced.length)
      throw new UsageError(
        `--max-cost needs a price for ${unpriced[0]!.model.name} (step '${unpriced[0]!.id}')`,
        "set model.price: { input_per_mtok: …, output_per_mtok: … } in the manifest",
      );
  }

  const controller = new AbortController();
  // Every request in flight listens for the abort: far more than Node's default warning level of 10.
  setMaxListeners(0, controller.signal);
  // Load the HTTP client while the manifest's samples are checked against the cache.
  if (!opts.offline && !opts.frozen && m.steps.some((s) => s.kind === "generate" && s.model.provider !== "echo"))
    void import("../providers/openai.js").catch(() => {});
  const onAbort = () => controller.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  // Aborted while the manifest was read: the listener above will never hear it.
  if (opts.signal?.aborted) controller.abort();
  const release = await acquireBuildLock(
    paths.buildLock,
    (pid) => events.warn?.(`waiting for another build of this manifest (pid ${pid}) to finish`),
    controller.signal,
  );
  // While this build runs, gc waits: it must not delete an answer this build pays for or names.
  let unuse: () => Promise<void> = async () => {};
  try {
    unuse = await useCache(paths.cacheDir, (what) => events.warn?.(what), controller.signal);
    // Whatever happens next, the old stamp no longer describes dist/ and the lock.
    await removeStamp(paths, m.file);
    // An unreadable lock is rewritten by a build (it is derived data), but never trusted by --frozen.
    const existing = await readLock(paths.lock).catch((err: Error) => {
      if (opts.frozen) throw err;
      events.warn?.(`${err.message}; it will be written anew`);
      return undefined;
    });
    // Rerolled samples are built at the attempt the lock records, and keep it in the lock written.
    const samples = withAttempts(m, project.samples, await recordedAttempts(paths.lock, existing?.lock));
    // make's "up to date", decided where plan, verify and --frozen decide it too. --frozen, the
    // release gate, reads every answer the lock names rather than trusting that it is there.
    const remote = projectRemote(m, opts);
    // The release gate, with a remote: every answer the lock names is fetched (and checked against
    // the lock) before anything is decided, so a fresh clone passes with zero requests.
    const fetched =
      opts.frozen && remote && existing
        ? { remote: remote.description, fetched: await pullForFrozen(cache, remote, existing.lock), uploaded: 0, notUploaded: [] }
        : undefined;
    const withFetched = (r: BuildResult, shard?: Shard): BuildResult => asShard(fetched ? { ...r, remote: fetched } : r, shard);
    const verdict = await decide(m, samples, cache, existing, { offline, content: opts.frozen });
    if (verdict.upToDate) {
      // A build killed while renaming its outputs into place leaves the old release whole (so
      // this is a no-op) and its temp files beside it.
      await sweepTemps(m, paths.lock, events);
      events.decided?.("up to date: every sample's recipe matches the lock, and dist/ and the cache agree with it");
      const idle = offline || opts.frozen ? 0 : await collectIdleBatches(cache, paths.cacheDir, m.file, m.steps, env, controller.signal, events);
      if (controller.signal.aborted) throw idleInterrupted("dist/ and the lock are as they were");
      const unstamped = idle
        ? idleBatches(idle)
        : await writeStamp({ manifest: m, paths, cache, lock: existing!.lock, lockHash: existing!.hash, offline, env, warnings });
      if (unstamped) events.decided?.(`no stamp written: ${unstamped}`);
      const l = existing!.lock;
      if (!hasRoot(paths.cacheDir, m.file)) await writeRoot(paths.cacheDir, m.name, m.file, verdict.current.keys).catch(() => {});
      return withFetched(
        noopResult({
          samples: l.header.samples,
          dropped: l.header.dropped,
          drops: countDrops(l.samples),
          cached: verdict.current.keys.length,
          outputs: l.outputs.map((o) => ({ path: o.path, rows: o.rows })),
          ...(l.header.target ? { target: targetOutcome(l.header) } : {}),
        }),
        opts.shard,
      );
    }
    events.decided?.(`building: ${verdict.why}`);
    await checkOutputPaths(m);
    const runs = samples.map((s) => newRun(m, s));
    if (runs.length >= 10_000) cache.snapshot();
    if (opts.frozen) return withFetched(await frozenBuild(m, runs, cache, existing, offline, paths.lock, events));
    await cache.checkWritable();
    const budget = new Budget(opts.maxCost, offline);
    // The walk lends itself a worker while a request waits out a backoff (see RequestWorkers).
    const workers: RequestWorkers = {};
    const pool = new ProviderPool(env, {
      offline,
      concurrency: opts.concurrency,
      signal: controller.signal,
      onRetry: (r) => {
        if (r.delayMs > 0) workers.lend?.(r.delayMs);
        events.retried?.({ step: "", attempt: r.attempt, delayMs: r.delayMs, reason: r.error.message });
      },
    });
    const requesting = new BuildResolver(
      cache,
      pool,
      controller.signal,
      requestEvents(budget, events, controller.signal, needsPrices),
      (step, req, sample, batch) => {
        if (limit && !limit.allows(sample.id)) return false;
        if (opts.shard && !inShard(sample.id, opts.shard)) return false;
        if (!budget.mayStart(step, req, batch)) return false;
        limit?.admit(sample.id);
        return true;
      },
      m.steps.some((s) => s.kind === "generate" && (s.model.tpm || s.model.replicas?.some((r) => r.tpm))) && !offline ? await loadTokenCounter() : undefined,
    );
    // What a segment's requests can start with: this shard's samples, within --limit.
    const admit = (pending: PendingRun[]) => {
      const mine = opts.shard ? pending.filter((p) => inShard(p.run.sample.id, opts.shard!)) : pending;
      return limit ? limit.preview(mine, (p) => p.run.sample.id) : mine;
    };
    const runner = new BatchRunner(requesting, pool, paths.cacheDir, controller.signal, batchLimits(env), events, m.file);
    // Keys a pending batch covers are collected from it whatever their step's mode now: never paid twice.
    const pendingKeys = offline ? new Set<string>() : await runner.pendingKeys();
    const batching: Batching = {
      mayBatch: (from, end) => pendingKeys.size > 0 || m.steps.slice(from, end).some((s) => s.kind === "generate" && batches(s, Infinity, offline)),
      round: (pending, end) =>
        new BatchRound(
          requesting,
          runner,
          batchedSteps(
            m.steps.slice(0, end),
            // Only what this build's admission lets start counts, as in plan: --limit 3 of 30
            // requests is 3 requests, not 30, whatever batch_above says.
            requestsByStep(
              m.steps,
              admit(pending).map((p) => p.cursor),
              end,
            ),
            offline,
          ),
          pending.length,
          controller.signal,
          pendingKeys,
        ),
    };
    const linked = remote ? await BuildRemote.open(cache, remote, { upload: true, events }) : undefined;
    if (linked) requesting.remote = linked.hooks();
    let remoteReport: RemoteReport | undefined;
    // Replicas' slots add up, and so do steps' (a sample may wait on either model): the walk must
    // keep all of them busy. Offline, the echo provider takes 64 at a time (providers.ts).
    const slots = (s: GenerateStep) => {
      if (offline) return 64;
      if (!s.model.replicas) return opts.concurrency ?? s.model.concurrency;
      return s.model.replicas.reduce((n, r) => n + (opts.concurrency ?? r.concurrency), 0);
    };
    const allSlots = m.steps.reduce((n, s) => n + (s.kind === "generate" ? slots(s) : 0), 0);
    try {
      const width = Math.max(256, allSlots * 4);
      // Half as many again as the slots: a sample between requests (rendering, a run step) leaves
      // one free, and more only wait for one (see WalkOptions.requestWidth).
      const requestWidth = Math.max(32, Math.ceil(allSlots * 1.5));
      const providerOverride = offline ? ("echo" as const) : undefined;
      const walkOnce = async () => {
        // With a dedupe before a generate step, a segment's scan would announce only its own
        // requests and the total would grow at the next; the forecast counts them all up front.
        const live = runs.filter((r) => (r.status === "kept" || r.status === "pending") && r.cursor < m.steps.length);
        const announced = needsForecast(m) ? await forecast(m, live, new CacheResolver(cache), { width, providerOverride, admit }) : new Map<number, number>();
        const total = [...announced.values()].reduce((a, b) => a + b, 0);
        if (total) events.planned?.(total);
        await walk(m, runs, {
          cached: new CacheResolver(cache),
          requesting,
          width,
          requestWidth,
          workers,
          providerOverride,
          signal: controller.signal,
          redact: pool.redact,
          batching,
          onPending: (pending, end) => {
            // The same count, now that the segment's scan knows: fewer (a dedupe dropped samples,
            // earlier requests failed) is told as such, more only when the cache lost answers.
            const requests = requestsBySegment(m, admit(pending)).get(end) ?? 0;
            const n = requests - (announced.get(end) ?? 0);
            if (n > 0) events.planned?.(n);
            else if (n < 0) events.unplanned?.(-n);
            // The scan is done and its first requests are going out: the price book loads while they wait.
            if (needsPrices && requests > 0) loadPricesWhenIdle();
          },
        });
      };
      await walkWaves(m, runs, walkOnce, (added, kept) =>
        events.decided?.(`target.rows ${m.target!.rows}: ${kept} rows from ${runs.length - added} candidates, trying ${added} more`),
      );
    } catch (err) {
      // A build that stops early pays for nothing more: requests in flight are dropped.
      controller.abort();
      throw err;
    } finally {
      // Whatever stopped it, the answers paid for go to the remote too.
      remoteReport = await linked?.finish();
    }
    // A batch whose answers were all stored by a build killed before it forgot the batch.
    if (!controller.signal.aborted && (pendingKeys.size > 0 || m.steps.some((s) => s.kind === "generate" && batches(s, Infinity, offline))))
      await runner.sweep((key) => cache.has(key));
    // Stopped early (Ctrl-C): the previous dist/ and lock stay as they were, a release that is
    // whole; every answer that arrived is in the cache, and the next build starts from there.
    if (controller.signal.aborted) {
      const left = await runner.outstanding();
      throw new InterruptedError(
        `interrupted: dist/ and the lock are as they were; finished answers are cached, and \`synthbuild build\` goes on from them${
          left.length
            ? `. ${left.length} batch${left.length === 1 ? " is" : "es are"} still running at the endpoint (${left
                .slice(0, 3)
                .map((r) => r.batch_id ?? r.input_file_id)
                .join(
                  ", ",
                )}${left.length > 3 ? ", …" : ""}): the next build collects ${left.length === 1 ? "it" : "them"} without submitting again; \`synthbuild status\` shows ${left.length === 1 ? "it" : "them"}, \`synthbuild status --cancel\` cancels ${left.length === 1 ? "it" : "them"}`
            : ""
        }`,
      );
    }
    // A shard's samples are only a part of the dataset: its answers are the product, not dist/.
    if (opts.shard) return withRemote(shardResult(runs, opts.shard, budget.spent, budget.reached), remoteReport);
    await sweepTemps(m, paths.lock, events);
    const emitted = await emit(m, runs, { write: true });
    for (const w of rejectionWarnings(emitted.rejected)) events.warn?.(w);
    if (existing)
      for (const path of await removeStaleOutputs(m, existing.lock, emitted.outputs)) events.warn?.(`removed ${path}: the manifest no longer writes it`);
    const lock = assembleLock(m, runs, emitted, offline);
    const hash = await writeLock(paths.lock, lock, existing?.hash);
    for (const w of await writeCard(m, lock, hash, existing?.lock)) events.warn?.(w);
    // For gc of a cache shared with other projects: what this one's lock names.
    await writeRoot(paths.cacheDir, m.name, m.file, lockKeys(lock)).catch((err: Error) =>
      events.warn?.(`could not record this project's answers for gc: ${err.message}`),
    );
    // Batches the edited manifest no longer asks anything of (what they answered is paid for),
    // once the release is written: neither delayed nor lost for them.
    const idle = pendingKeys.size > 0 ? await runner.collectIdle(m.steps) : 0;
    if (controller.signal.aborted) throw idleInterrupted("dist/ and the lock are written, whole");
    const result = summarise(runs, emitted.outputs, budget.spent, budget.reached, limit);
    if (remoteReport) result.remote = remoteReport;
    if (lock.header.target) result.target = targetOutcome(lock.header);
    const byReplica = pool.replicaAnswers();
    if (byReplica) result.replicas = byReplica;
    if (result.failed === 0 && result.pending === 0) {
      // Checked, not assumed: a gc (or a person) may have removed an answer while this build ran.
      const missing = cache.firstMissing(lockKeys(lock), hash);
      if (missing) events.warn?.(`answer ${missing}, which the lock names, left the cache during the build; the next build requests it again`);
      else if (idle) events.decided?.(`no stamp written: ${idleBatches(idle)}`);
      else {
        const unstamped = await writeStamp({ manifest: m, paths, cache, lock, lockHash: hash, offline, env, warnings });
        if (unstamped) events.decided?.(`no stamp written: ${unstamped}`);
      }
    }
    return result;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    await unuse();
    cache.close();
    await release();
  }
}

/**
 * An up-to-date build's look at the batches of this cache (none of them asks for anything the
 * lock names, or the build would not be up to date): as a build that requests asks them
 * (BatchRunner.collectIdle), with a client made only when there is a record. How many are left.
 */
async function collectIdleBatches(
  cache: Cache,
  cacheDir: string,
  manifest: string,
  steps: readonly Step[],
  env: NodeJS.ProcessEnv,
  signal: AbortSignal,
  events: BuildEvents,
): Promise<number> {
  if (!(await hasBatchRecords(cacheDir))) return 0;
  const pool = new ProviderPool(env, { offline: false, signal });
  const resolver = new BuildResolver(cache, pool, signal);
  return new BatchRunner(resolver, pool, cacheDir, signal, batchLimits(env), events, manifest).collectIdle(steps);
}

/** Ctrl-C while batches no sample waits for were asked: nothing of the release is lost, and they are asked again. */
const idleInterrupted = (release: string) =>
  new InterruptedError(
    `interrupted while asking batches this manifest no longer asks anything of whether they are done: ${release}; the next build asks them again`,
  );

/** Why no stamp: a no-op it decided would not ask these batches again. */
const idleBatches = (n: number) =>
  `${n} batch${n === 1 ? "" : "es"} this manifest no longer asks anything of ${n === 1 ? "is" : "are"} still to be collected (each build asks again)`;

export interface Shard {
  /** 1-based, as CI matrices count. */
  index: number;
  count: number;
}

/** Which shard a sample belongs to: by its id, so every runner agrees without talking. */
export function inShard(sampleId: string, shard: Shard): boolean {
  return Number.parseInt(sampleId.slice(0, 8), 16) % shard.count === shard.index - 1;
}

/**
 * A shard's summary: its own samples' failures count; the other shards' samples, and samples
 * waiting on a dataset-level step (dedupe) over them, are held back, not missing.
 */
function shardResult(runs: SampleRun[], shard: Shard, costUsd: number | null, budgetReached: boolean): BuildResult {
  const r = summarise(runs, [], costUsd, budgetReached);
  // Only --max-cost leaves this shard's own requests unmade; what else waits (a dedupe over
  // other shards' samples, and the steps after it) is the next round's or the assembly's.
  const ownPending = budgetReached ? runs.filter((x) => x.status === "pending" && inShard(x.sample.id, shard)).length : 0;
  return { ...r, heldBack: r.pending - ownPending, shard };
}

/** A shard of a dataset already built: nothing of its to do, and nothing written. */
function asShard(r: BuildResult, shard: Shard | undefined): BuildResult {
  return shard ? { ...r, outputs: [], heldBack: r.pending, shard } : r;
}

function withRemote(r: BuildResult, remote: RemoteReport | undefined): BuildResult {
  return remote ? { ...r, remote } : r;
}

function noopResult(s: NoopSummary): BuildResult {
  return { ...s, requests: 0, failed: 0, pending: 0, heldBack: 0, failures: [], costUsd: 0, budgetReached: false };
}

/**
 * --frozen, when the lock, cache and dist/ are not already in agreement (dist/ missing in a fresh
 * clone, say): build from the cache alone, check that it gives exactly the lock, and only then
 * write dist/. The lock is never written: it is what is being checked against.
 */
async function frozenBuild(
  m: Manifest,
  runs: SampleRun[],
  cache: Cache,
  existing: { lock: Lock; hash: string } | undefined,
  offline: boolean,
  lockPath: string,
  events: BuildEvents,
): Promise<BuildResult> {
  await walk(m, runs, { cached: new CacheResolver(cache), width: 256, providerOverride: offline ? "echo" : undefined });
  const emitted = await emit(m, runs, { write: false });
  checkFrozen(m.steps, runs, assembleLock(m, runs, emitted, offline), existing, offline);
  await sweepTemps(m, lockPath, events);
  await emit(m, runs, { write: true });
  // checkFrozen has made sure there is a lock, and that it is this one.
  for (const w of await writeCard(m, existing!.lock, existing!.hash)) events.warn?.(w);
  const result = summarise(runs, emitted.outputs, null, false);
  if (existing!.lock.header.target) result.target = targetOutcome(existing!.lock.header);
  return result;
}

async function sweepTemps(m: Manifest, lockPath: string, events: BuildEvents): Promise<void> {
  const removed = await removeStrayTemps(m, lockPath);
  if (removed.length)
    events.warn?.(`removed ${removed.length} temp file(s) an interrupted build left: ${removed.slice(0, 3).join(", ")}${removed.length > 3 ? ", …" : ""}`);
}

/** Requests the pending samples will make in this segment: the step they stopped on and every generate after it. */
function checkFrozen(steps: { id: string }[], runs: SampleRun[], lock: Lock, existing: { lock: Lock; hash: string } | undefined, offline: boolean): void {
  const missing = runs.filter((r) => r.status === "pending").sort((a, b) => (a.sample.id < b.sample.id ? -1 : 1));
  if (missing.length && existing?.lock.header.offline && !offline) {
    throw new FrozenError(
      `--frozen: dataset.lock was built --offline, and the cache has no real model's answers for ${missing.length} sample${missing.length === 1 ? "" : "s"}`,
      missing.map((r) => r.sample.id),
      "add --offline to check an offline build, or build with the model first",
    );
  }
  if (missing.length) {
    const names = missing.map((r) => `${r.sample.id} (step ${steps[r.cursor]?.id ?? "?"})`);
    throw new FrozenError(
      `--frozen: ${missing.length} sample${missing.length === 1 ? " is" : "s are"} not in the cache:\n${names
        .slice(0, 20)
        .map((n) => `  ${n}`)
        .join("\n")}${missing.length > 20 ? `\n  … and ${missing.length - 20} more` : ""}`,
      missing.map((r) => r.sample.id),
      "run `synthbuild build` (without --frozen) where the model can be reached, then commit dataset.lock and share the cache",
    );
  }
  if (existing === undefined)
    throw new FrozenError("--frozen: there is no dataset.lock to check against", [], "run `synthbuild build` and commit dataset.lock");
  if (hashLock(lock) !== existing.hash) {
    const before = new Map(existing.lock.samples.map((s) => [s.id, canonicalJson(s)]));
    const after = new Map(lock.samples.map((s) => [s.id, canonicalJson(s)]));
    const changed = [...new Set([...before.keys(), ...after.keys()])].filter((id) => before.get(id) !== after.get(id)).sort();
    throw new FrozenError(
      `--frozen: dataset.lock is out of date${
        changed.length
          ? `; ${changed.length} sample${changed.length === 1 ? " differs" : "s differ"}:\n${changed
              .slice(0, 20)
              .map((id) => `  ${id}`)
              .join("\n")}`
          : " (outputs differ)"
      }`,
      changed,
      "the manifest changed since the lock was written: run `synthbuild build` and commit dataset.lock",
    );
  }
}

function summarise(
  runs: SampleRun[],
  outputs: { path: string; rows: number }[],
  costUsd: number | null,
  budgetReached: boolean,
  limit?: SampleLimit,
): BuildResult {
  // Samples that sent the very same request shared one answer: count requests, not samples.
  const ran = new Set<string>();
  let cached = 0;
  const count = { kept: 0, dropped: 0, failed: 0, pending: 0 };
  const failures: BuildResult["failures"] = [];
  let heldBack = 0;
  for (const r of runs) {
    count[r.status]++;
    if (r.status === "pending" && limit && !limit.has(r.sample.id)) heldBack++;
    for (const s of r.steps) {
      if (s.status === "ran" && s.key) ran.add(s.key);
      if (s.status === "cached") cached++;
    }
    if (r.status === "failed") failures.push({ sample: r.sample.id, step: r.stoppedBy!.step, reason: r.stoppedBy!.reason });
  }
  return {
    samples: runs.length,
    requests: ran.size,
    cached,
    failed: count.failed,
    dropped: count.dropped,
    pending: count.pending,
    heldBack,
    outputs: outputs.map((o) => ({ path: o.path, rows: o.rows })),
    failures,
    drops: countDrops(runs.map((r) => ({ id: r.sample.id, status: r.status, reason: r.stoppedBy && { step: r.stoppedBy.step, why: r.stoppedBy.reason } }))),
    costUsd: costUsd === null ? null : Math.round(costUsd * 1e6) / 1e6,
    budgetReached,
  };
}
