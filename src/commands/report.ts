import { realpath, stat } from "node:fs/promises";
import { dirname, relative, resolve } from "node:path";
import { UsageError } from "../errors.js";
import { CacheResolver } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import { allowedPairs, pairCoverage } from "../expand/coverage.js";
import { attemptsOfLock } from "../lock/attempts.js";
import { countDrops } from "../lock/drops.js";
import { readLock } from "../lock/lockfile.js";
import { outputTargets } from "../manifest/output-targets.js";
import type { Manifest } from "../manifest/types.js";
import { cardTarget } from "../output/card.js";
import { type ReportData, renderReport } from "../output/report-html.js";
import { withAttempts } from "../plan/attempts.js";
import { newRun, type SampleRun } from "../plan/pipeline.js";
import { costOf, loadPrices, needsPriceBook, priceOf } from "../plan/prices.js";
import { Structured } from "../template/structured.js";
import { writeFileAtomic } from "../util/fs-atomic.js";
import { makeDirs } from "../util/make-dirs.js";
import { VERSION } from "../version.js";
import { type CommonOptions, openProject } from "./context.js";

export type { ReportData };

export interface ReportOptions extends CommonOptions {
  /** Where the page goes (default report.html beside the manifest). */
  out?: string;
  offline?: boolean;
  /** Sample rows in the table at the end (default 500). */
  rows?: number;
}

/** `synthbuild report`: one self-contained HTML page describing the dataset as the cache and lock make it. No request is made. */
export async function report(opts: ReportOptions = {}): Promise<{ path: string; data: ReportData }> {
  const project = await openProject(opts);
  const m = project.manifest;
  const out = resolve(opts.cwd ?? process.cwd(), opts.out ?? resolve(m.dir, "report.html"));
  await refuseInputs(m, out, project.paths.lock, project.paths.cacheDir);
  const lock = await readLock(project.paths.lock).catch(() => undefined);
  const offline = opts.offline ?? lock?.lock.header.offline ?? false;
  const runs = withAttempts(m, project.samples, attemptsOfLock(lock?.lock)).map((s) => newRun(m, s));
  if (runs.length >= 10_000) project.cache.snapshot();
  await walk(m, runs, { cached: new CacheResolver(project.cache), width: 256, providerOverride: offline ? "echo" : undefined });
  if (needsPriceBook(m.steps, offline)) await loadPrices();
  const splitOf = new Map(lock?.lock.samples.map((s) => [s.id, s.split ?? null]) ?? []);
  const data = gather(m, runs, splitOf, offline, lock?.hash ?? null, opts.rows ?? 500);
  await makeDirs(dirname(out));
  await writeFileAtomic(out, renderReport(data), { fsync: false });
  return { path: out, data };
}

async function refuseInputs(m: Manifest, out: string, lockPath: string, cacheDir: string): Promise<void> {
  const real = await realpath(dirname(out)).then(
    (d) => resolve(d, out.slice(dirname(out).length + 1)),
    () => out,
  );
  if (
    await stat(out).then(
      (st) => st.isDirectory(),
      () => false,
    )
  )
    throw new UsageError(`${relative(m.dir, out) || out} is a folder`, "give --out a file name, e.g. report.html");
  // Every file a build writes (split files, the dataset card) as well as what it reads.
  const written = [...m.outputs.flatMap((o) => [o.absPath, ...outputTargets(o).map((t) => t.abs)]), ...(cardTarget(m) ? [cardTarget(m)!.abs] : [])];
  const inputs = new Set([...Object.keys(m.inputs.files), m.file, lockPath, ...written]);
  const inCache = !relative(cacheDir, real).startsWith("..") && relative(cacheDir, real) !== real;
  if (inputs.has(out) || inputs.has(real) || inCache)
    throw new UsageError(
      `${relative(m.dir, out) || out} is ${inCache ? "inside the cache" : "an input, the lock, an output or the dataset card"}: the report would replace it`,
      "give --out another path, e.g. report.html",
    );
}

function gather(m: Manifest, runs: SampleRun[], splitOf: Map<string, string | null>, offline: boolean, lockHash: string | null, maxRows: number): ReportData {
  const counts = { samples: runs.length, kept: 0, dropped: 0, failed: 0, pending: 0 };
  for (const r of runs) counts[r.status]++;
  const kept = runs.filter((r) => r.status === "kept");

  const splits = new Map<string, number>();
  for (const r of kept) {
    const s = splitOf.get(r.sample.id);
    if (s) splits.set(s, (splits.get(s) ?? 0) + 1);
  }

  const dimensions = m.dimensions.map((d, i) => {
    const by = new Map(d.values.map((v) => [v.key, { value: v.key, samples: 0, kept: 0 }]));
    for (const r of runs) {
      const c = by.get(r.sample.values[i]!.key)!;
      c.samples++;
      if (r.status === "kept") c.kept++;
    }
    return { name: d.name, values: [...by.values()] };
  });

  const small = (i: number, j: number) => m.dimensions[i]!.values.length <= 20 && m.dimensions[j]!.values.length <= 20;
  // A matrix is readable up to about 20 × 20; past that the page gives the fraction alone.
  const pairs: ReportData["pairs"] = pairCoverage(
    m,
    kept.map((r) => r.sample),
    { cells: small },
  ).map((p, n) => {
    if (!p.cells) return { a: p.a, b: p.b, covered: p.covered, total: p.total };
    const [i, j] = pairIndex(m.dimensions.length, n);
    const allowed = allowedPairs(m, i, j);
    const cells = [...p.cells].map(([k, kept]) => {
      const [a, b] = JSON.parse(k) as [string, string];
      return { a, b, kept };
    });
    return { a: p.a, b: p.b, covered: p.covered, total: p.total, cells, excluded: excludedCells(m, i, j, allowed) };
  });

  const steps = m.steps.map((s) => {
    const lengths: number[] = [];
    let reached = 0;
    for (const r of runs) {
      if (!r.steps.some((x) => x.id === s.id)) continue;
      reached++;
      const t = textOf(r.scope[s.id]);
      if (t !== undefined) lengths.push(t.length);
    }
    lengths.sort((x, y) => x - y);
    return { id: s.id, kind: s.kind, reached, histogram: histogram(lengths), median: lengths.length ? lengths[Math.floor(lengths.length / 2)]! : null };
  });

  const usage = new Map<string, ReportData["usage"][number] & { fp: Set<string> }>();
  const seenKeys = new Set<string>();
  for (const r of runs)
    for (const s of r.steps) {
      if (s.kind !== "generate" || !s.key || seenKeys.has(s.key)) continue;
      // Samples that sent the very same request shared one answer, paid once.
      seenKeys.add(s.key);
      const step = m.steps.find((x) => x.id === s.id)!;
      const model = s.model ?? (step.kind === "generate" ? step.model.name : "?");
      const k = `${s.id}\0${model}`;
      let u = usage.get(k);
      if (!u) usage.set(k, (u = { step: s.id, model, fingerprints: [], fp: new Set(), answers: 0, input_tokens: 0, output_tokens: 0, cost_usd: 0 }));
      u.answers++;
      if (s.fingerprint) u.fp.add(s.fingerprint);
      const [input, output] = [s.usage?.input ?? 0, s.usage?.output ?? 0];
      u.input_tokens += input;
      u.output_tokens += output;
      const c = step.kind === "generate" ? costOf(priceOf(step.model, offline), input, output) : null;
      u.cost_usd = c === null || u.cost_usd === null ? null : u.cost_usd + c;
    }
  const usageRows = [...usage.values()].map(({ fp, ...u }) => ({
    ...u,
    fingerprints: [...fp].sort(),
    cost_usd: u.cost_usd === null ? null : round(u.cost_usd),
  }));
  const costs = usageRows.map((u) => u.cost_usd);

  const textSteps = m.steps.filter((s) => s.kind === "generate" || s.kind === "map" || s.kind === "run").map((s) => s.id);
  const rows = runs.slice(0, maxRows).map((r) => ({
    id: r.sample.id,
    status: r.status,
    split: splitOf.get(r.sample.id) ?? null,
    reason: r.stoppedBy ? `${r.stoppedBy.step}: ${r.stoppedBy.reason}` : null,
    values: Object.fromEntries(m.dimensions.map((d, i) => [d.name, r.sample.values[i]!.key])),
    texts: Object.fromEntries(textSteps.flatMap((id) => (textOf(r.scope[id]) === undefined ? [] : [[id, textOf(r.scope[id])!]]))),
  }));

  return {
    name: m.name,
    tool: VERSION,
    lock: lockHash,
    counts,
    splits: [...splits].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([split, n]) => ({ split, rows: n })),
    dimensions,
    pairs,
    steps,
    drops: countDrops(runs.map((r) => ({ id: r.sample.id, status: r.status, reason: r.stoppedBy && { step: r.stoppedBy.step, why: r.stoppedBy.reason } }))),
    failures: runs.filter((r) => r.status === "failed").map((r) => ({ sample: r.sample.id, step: r.stoppedBy!.step, reason: r.stoppedBy!.reason })),
    usage: usageRows,
    cost_usd: costs.includes(null) ? null : round(costs.reduce<number>((a, b) => a + (b ?? 0), 0)),
    rows,
    rows_omitted: Math.max(0, runs.length - maxRows),
  };
}

/** A step's output as text: a structured answer prints as its raw JSON. */
function textOf(v: unknown): string | undefined {
  return typeof v === "string" ? v : v instanceof Structured ? v.text : undefined;
}

/** The n-th pair (i < j) in the order pairCoverage lists them. */
function pairIndex(dims: number, n: number): [number, number] {
  for (let i = 0; i < dims; i++) for (let j = i + 1; j < dims; j++) if (n-- === 0) return [i, j];
  throw new Error("pair index out of range");
}

/** Value pairs no combination may hold (excluded, or outside a conditional's own values), to draw apart from pairs merely missing. */
function excludedCells(m: Manifest, i: number, j: number, allowed: Set<string>): { a: string; b: string }[] {
  const out: { a: string; b: string }[] = [];
  for (const va of m.dimensions[i]!.values)
    for (const vb of m.dimensions[j]!.values) if (!allowed.has(JSON.stringify([va.key, vb.key]))) out.push({ a: va.key, b: vb.key });
  return out;
}

/** Up to 12 equal-width bins from the shortest to the longest (sorted input). */
function histogram(sorted: number[]): { from: number; to: number; count: number }[] {
  if (!sorted.length) return [];
  const lo = sorted[0]!;
  const hi = sorted[sorted.length - 1]!;
  const bins = Math.min(12, hi - lo + 1);
  const width = Math.ceil((hi - lo + 1) / bins);
  const out = Array.from({ length: bins }, (_, i) => ({ from: lo + i * width, to: lo + (i + 1) * width - 1, count: 0 }));
  for (const n of sorted) out[Math.min(bins - 1, Math.floor((n - lo) / width))]!.count++;
  return out.filter((b) => b.from <= hi);
}

function round(usd: number): number {
  return Math.round(usd * 1e6) / 1e6;
}
