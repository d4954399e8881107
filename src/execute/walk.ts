import type { Manifest } from "../manifest/types.js";
import { advance, applyDedupe, barriers, forEachConcurrent, type PipelineOptions, type Resolver, type SampleRun } from "../plan/pipeline.js";
import { dropBeyondTarget } from "../plan/target-rows.js";
import { type Redact, redactor, secretsIn } from "../util/redact.js";
import { RunPool } from "./run-pool.js";

export interface PendingRun {
  readonly run: SampleRun;
  /** The step it stopped on when the scan found it missing. */
  readonly cursor: number;
  /** The cache key of the missing answer (none when it stopped on a run step): samples sending one request share it. */
  readonly key?: string;
}

export interface WalkOptions extends PipelineOptions {
  /** Answers from the cache alone. */
  cached: Resolver;
  /** Requests what the cache lacks; absent for plan, show and --frozen. */
  requesting?: Resolver;
  /** Samples in flight at once. */
  width: number;
  /**
   * Samples past their cache scan and requesting at once (default `width`): enough to keep every
   * endpoint slot busy, and no more. A sample waiting for a slot holds its request's objects
   * across young-generation collections, each of which copies them, and they end up promoted: at
   * 64 slots, 256 such samples cost a cold build of 100,000 about 15% more CPU than 96.
   */
  requestWidth?: number;
  /** Where the requests' side lends the walk a worker while a request waits out a retry's backoff. */
  workers?: RequestWorkers;
  /**
   * Called once per segment, when the cache scan is done (also when nothing is missing), with the
   * samples that stopped on a miss and the step each stopped on (for progress totals: their
   * requests may have started already, so the runs' own cursors have moved on).
   */
  onPending?: (pending: PendingRun[], end: number) => void;
  /** Ctrl-C: run modules' threads are terminated at once (requests hear it through their resolver). */
  signal?: AbortSignal;
  /** Masks the build's secrets in what run modules say (failures, drop reasons): those go into the lock. */
  redact?: Redact;
  /** Steps that may go by the Batch API (execute/batch-round.ts). */
  batching?: Batching;
}

/**
 * A request waiting out a retry's backoff has given its endpoint slot back, but its sample still
 * holds a requesting worker: with requestWidth near the slots, samples that keep failing (1% of
 * a build, retried for half a minute each) would hold every worker and leave the slots idle.
 * `lend(ms)`, set by the walk while it requests, adds a worker for that long.
 */
export interface RequestWorkers {
  lend?: (ms: number) => void;
}

/** How a build sends some steps' requests as batches. */
export interface Batching {
  /** Whether some step in steps[from, end) may go by batch: then the scan ends before any request, so the choice sees every miss. */
  mayBatch(from: number, end: number): boolean;
  /** The resolver for this segment's misses (the samples that stopped on one, and where). */
  round(pending: PendingRun[], end: number): Resolver & { finished(): void };
}

/**
 * Take every sample as far as it can go. Per segment (the steps between dataset-level ones): a
 * pass that uses only the cache and, when requesting, requests for the samples that stopped on a
 * miss; then the dataset-level step over everything that is complete.
 */
export async function walk(m: Manifest, runs: SampleRun[], walkOpts: WalkOptions): Promise<void> {
  // Its threads start with the first call of a run module, and all end with the walk. A caller
  // that gives its own runModule (the progress forecast) calls no module.
  const pool = !walkOpts.runModule && m.steps.some((s) => s.kind === "run") ? new RunPool({ signal: walkOpts.signal }) : undefined;
  // A module that throws its environment's key ("invalid key sk-…") must not put it in the lock.
  // The module's thread sees process.env whatever env a library caller gave the build: mask both.
  const own = pool ? redactor(secretsIn(process.env)) : undefined;
  const redact = own && ((text: string) => (walkOpts.redact ? walkOpts.redact(own(text)) : own(text)));
  const opts: WalkOptions =
    pool && redact
      ? {
          ...walkOpts,
          runModule: async (step, vars) => {
            const outcome = await pool.run(step, vars);
            if ("failed" in outcome) return { failed: redact(outcome.failed) };
            if ("drop" in outcome) return { drop: redact(outcome.drop) };
            return outcome;
          },
        }
      : walkOpts;
  try {
    await walkSegments(m, runs, opts);
    if (m.target) dropBeyondTarget(m.target, runs);
  } finally {
    await pool?.close();
  }
}

async function walkSegments(m: Manifest, runs: SampleRun[], opts: WalkOptions): Promise<void> {
  const ends = [...barriers(m.steps), m.steps.length];
  let start = 0;
  // target: runs come in candidate order, and dedupe keeps the earliest (see applyDedupe).
  const rank = m.target ? new Map(runs.map((r, i) => [r, i])) : undefined;
  for (const end of ends) {
    // A sample still short of an earlier dataset-level step (its answer was held back, by --limit,
    // --max-cost or --shard) waits there: it must not be advanced past a dedupe it never went through,
    // even when its answer has turned up in the cache since (another shard wrote it).
    const from = start;
    const live = runs.filter((r) => (r.status === "kept" || r.status === "pending") && r.cursor >= from && r.cursor < end);
    start = end + 1;
    if (opts.requesting && opts.batching?.mayBatch(from, end)) await scanThenBatch(m, live, end, opts, opts.batching);
    else if (opts.requesting) await scanAndRequest(m, live, end, opts, opts.requesting);
    else await forEachConcurrent(live, opts.width, (run) => advance(m, run, end, opts.cached, opts));
    const step = m.steps[end];
    if (step?.kind === "dedupe") {
      const complete = runs.filter((r) => r.status === "kept" && r.cursor === end);
      // Rows of earlier waves that passed this dedupe are what a new wave's duplicates duplicate.
      const earlier = rank ? runs.filter((r) => r.cursor > end && r.steps.some((s) => s.id === step.id)) : [];
      applyDedupe(step, earlier.length ? [...earlier, ...complete] : complete, rank);
      for (const r of complete) r.cursor = end + 1;
    }
  }
}

/**
 * One sample's cache pass up to `end`: the miss it stopped on, if any, with the key of the missing
 * answer (samples that send one request are one request, for the progress count).
 */
function cacheScan(m: Manifest, end: number, opts: WalkOptions): (run: SampleRun) => Promise<PendingRun | undefined> {
  const missed = new WeakMap<SampleRun, string>();
  const scanOpts: WalkOptions = {
    ...opts,
    // A requesting pass follows: it sends the request this pass rendered.
    holdMiss: true,
    onMiss: (run, req, step, key) => {
      missed.set(run, key);
      opts.onMiss?.(run, req, step, key);
    },
  };
  return async (run) => {
    await advance(m, run, end, opts.cached, scanOpts);
    return run.status === "pending" ? { run, cursor: run.cursor, key: missed.get(run) } : undefined;
  };
}

/**
 * With steps that may batch: the whole cache pass first (whether a step batches depends on how
 * many requests it needs), then every sample that stopped on a miss at once, since a batch is
 * made of all of a step's requests, and each finds its answer when its batch is done.
 */
async function scanThenBatch(m: Manifest, live: SampleRun[], end: number, opts: WalkOptions, batching: Batching): Promise<void> {
  const pending: PendingRun[] = [];
  const scanOne = cacheScan(m, end, opts);
  await forEachConcurrent(live, opts.width, async (run) => {
    const p = await scanOne(run);
    if (p) pending.push(p);
  });
  // As scanAndRequest: told even when nothing is pending (a forecast's over-count is corrected).
  opts.onPending?.(pending, end);
  if (!pending.length) return;
  const round = batching.round(pending, end);
  await Promise.all(pending.map((p) => advance(m, p.run, end, round, opts).finally(() => round.finished())));
}

/** How many misses ahead of the requests keep their rendered request for them (about 6 MB). */
const HELD_AHEAD = 10_000;

/**
 * The cache pass and the requests overlap: a sample that misses goes to the requesting workers at
 * once, so the first request does not wait for every cached answer to be read (on an edit of a
 * 2,000-sample dataset, ~50 ms). The number of requests is announced when the scan is done.
 * A build error (not a sample's failure) rejects at once; requests in flight are left to finish.
 */
async function scanAndRequest(m: Manifest, live: SampleRun[], end: number, opts: WalkOptions, requesting: Resolver): Promise<void> {
  const pending: PendingRun[] = [];
  let taken = 0;
  let scanning = true;
  let failure: { err: unknown } | undefined;
  let failed!: (err: unknown) => void;
  const failedEarly = new Promise<never>((_, reject) => (failed = reject));
  const waiting: (() => void)[] = [];
  const wake = (all: boolean) => {
    for (const w of all ? waiting.splice(0) : waiting.splice(0, 1)) w();
  };
  const fail = (err: unknown) => {
    if (!failure) {
      failure = { err };
      failed(err);
    }
    wake(true);
  };
  let scanned = 0;
  let gate: Promise<void> | undefined;
  const scanOne = cacheScan(m, end, opts);
  const scan = forEachConcurrent(live, opts.width, async (run) => {
    if (failure) return;
    // Cache reads are synchronous: unless every scanning worker stops now and then for a turn of
    // the event loop, no request gets onto the wire until the scan ends.
    if (++scanned % 32 === 0 && taken > 0) gate ??= new Promise((r) => setImmediate(() => ((gate = undefined), r())));
    if (gate) await gate;
    const p = await scanOne(run);
    if (p) {
      // A miss far behind the requests keeps no request: a scan that runs ahead of a million
      // misses must not hold a million rendered requests (one is rendered again when its turn comes).
      if (pending.length - taken >= HELD_AHEAD) p.run.heldMiss = undefined;
      pending.push(p);
      wake(false);
    }
  })
    .then(() => {
      if (!failure) opts.onPending?.(pending, end);
    })
    .catch(fail)
    .finally(() => {
      scanning = false;
      wake(true);
    });
  // Samples whose missing answer another worker is already asking for (a step that reads only
  // some dimensions gives several samples one request): they ride on that request without a
  // worker, or requestWidth workers could be waiting on a few requests with slots left idle.
  const asked = new Set<string>();
  const riders = new Set<Promise<void>>();
  // A worker lent for a while (see RequestWorkers.lend) stops taking samples once it ends.
  const worker = async (until = Infinity) => {
    while (!failure && (until === Infinity || Date.now() < until)) {
      if (taken < pending.length) {
        const p = pending[taken++]!;
        if (p.key !== undefined && asked.has(p.key)) {
          const ride: Promise<void> = advance(m, p.run, end, requesting, opts)
            .catch(fail)
            .finally(() => riders.delete(ride));
          riders.add(ride);
          continue;
        }
        if (p.key !== undefined) asked.add(p.key);
        try {
          await advance(m, p.run, end, requesting, opts);
        } finally {
          if (p.key !== undefined) asked.delete(p.key);
        }
      } else if (scanning) await new Promise<void>((r) => waiting.push(r));
      else return;
    }
  };
  if (opts.workers)
    opts.workers.lend = (ms) => {
      const lent: Promise<void> = worker(Date.now() + ms)
        .catch(fail)
        .finally(() => riders.delete(lent));
      riders.add(lent);
    };
  try {
    await Promise.race([Promise.all([scan, ...Array.from({ length: Math.max(1, opts.requestWidth ?? opts.width) }, () => worker().catch(fail))]), failedEarly]);
    // A ride ends with the request it rides on, or soon after (its sample's later steps); a lent
    // worker with the sample it took last.
    while (riders.size && !failure) await Promise.race([Promise.all([...riders]), failedEarly]);
  } finally {
    if (opts.workers) opts.workers.lend = undefined;
  }
  if (failure) throw failure.err;
}
