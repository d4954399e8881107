import { CacheResolver } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import { attemptsOfLock } from "../lock/attempts.js";
import { type LockSample, readLock } from "../lock/lockfile.js";
import { rowsOf } from "../output/row-of.js";
import { withAttempts } from "../plan/attempts.js";
import { newRun } from "../plan/pipeline.js";
import type { ChatRequest } from "../plan/request.js";
import { Structured } from "../template/structured.js";
import { type CommonOptions, openProject } from "./context.js";
import { findSample } from "./sample-ids.js";

export interface ShowResult {
  id: string;
  values: Record<string, string>;
  repeat: number;
  /** kept, dropped, failed, or pending (not built yet); from the lock when dataset-level steps decided. */
  status: string;
  reason?: string;
  steps: {
    id: string;
    kind: string;
    status: string;
    key?: string;
    request?: ChatRequest;
    output?: string;
    finish_reason?: string;
    model?: string;
    fingerprint?: string;
    usage?: { input: number; output: number };
  }[];
  /** Kept: its row in each output, as written to dist/ and in which file. */
  rows?: { path: string; split?: string; record?: unknown; in_dist: boolean; left_out?: string }[];
  /** Why it has no row: dropped or failed (by which step, and why), or not built yet. */
  no_row?: string;
}

/** One sample through every step: its values, each request as sent, each answer, and its fate. */
export async function show(id: string, opts: CommonOptions & { offline?: boolean } = {}): Promise<ShowResult> {
  const { manifest: m, paths, cache, samples } = await openProject(opts);
  const found = findSample(m, samples, id);
  const lock = (await readLock(paths.lock))?.lock;
  const sample = withAttempts(m, [found], attemptsOfLock(lock))[0]!;
  // Show the sample as it was built: offline if the lock was, unless told otherwise.
  const offline = opts.offline ?? lock?.header.offline ?? false;
  const run = newRun(m, sample);
  // Alone, dedupe cannot see the other samples: its verdict comes from the lock below.
  await walk(m, [run], { cached: new CacheResolver(cache), width: 1, keepRequests: true, providerOverride: offline ? "echo" : undefined });
  const locked: LockSample | undefined = lock?.samples.find((s) => s.id === sample.id);
  const steps: ShowResult["steps"] = run.steps.map((r) => ({
    id: r.id,
    kind: r.kind,
    status: r.status,
    key: r.key,
    request: r.request,
    output: textOf(run.scope[r.id], r.kind),
    finish_reason: r.finishReason,
    model: r.model,
    fingerprint: r.fingerprint,
    usage: r.usage,
  }));
  if (run.status === "pending") steps.push({ id: m.steps[run.cursor]!.id, kind: "generate", status: "not in cache", request: run.pendingRequest });
  let status: string = run.status;
  let reason = run.stoppedBy ? `${run.stoppedBy.step}: ${run.stoppedBy.reason}` : undefined;
  if (locked && run.status === "kept" && locked.status === "dropped" && locked.reason) {
    status = "dropped";
    reason = `${locked.reason.step}: ${locked.reason.why}`;
  }
  let rows: ShowResult["rows"];
  let noRow: string | undefined;
  if (status === "kept")
    rows = (await rowsOf(m, run, locked?.split)).map((r) => ({
      path: r.path,
      ...(r.split !== undefined && { split: r.split }),
      record: r.record,
      in_dist: r.inDist,
      ...(r.leftOut && { left_out: r.leftOut }),
    }));
  else if (status === "dropped") noRow = `dropped by ${reason}`;
  else if (status === "failed") noRow = `failed at ${reason} (retried by the next build)`;
  else noRow = "not built yet: an answer it needs is not in the cache (`synthbuild build` requests it)";
  return {
    id: sample.id,
    values: Object.fromEntries(m.dimensions.map((d, i) => [d.name, sample.values[i]!.key])),
    repeat: sample.repeat,
    status,
    reason,
    steps,
    ...(rows && { rows }),
    ...(noRow && { no_row: noRow }),
  };
}

/** A generate or map step's output as text (a structured answer as the JSON it was). */
function textOf(v: unknown, kind: string): string | undefined {
  if (kind !== "generate" && kind !== "map") return undefined;
  return typeof v === "string" ? v : v instanceof Structured ? v.text : undefined;
}
