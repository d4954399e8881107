import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { comboId } from "../expand/identity.js";
import type { LockOutput } from "../lock/lockfile.js";
import { outputTargets } from "../manifest/output-targets.js";
import type { Manifest, Output } from "../manifest/types.js";
import type { SampleRun } from "../plan/pipeline.js";
import { RENDER_VERSION, renderTemplate } from "../template/engine.js";
import { dataRenderProblem } from "../template/structured.js";
import { AtomicFileWriter, writeFileAtomic } from "../util/fs-atomic.js";
import { createHash128, hash128, hashValue } from "../util/hash.js";
import { makeDirs } from "../util/make-dirs.js";
import { uniqueNames } from "./file-names.js";
import { outputReads, outputScope, rejectedBy, renderRecord } from "./rows.js";
import { assignSplits, SPLIT_VERSION } from "./split.js";

export interface EmitResult {
  outputs: LockOutput[];
  /** Sample id → split name, from the first output that has a split. */
  splits: Map<string, string>;
  /** Rows left out because the output's consumer would reject them (see rows.ts). */
  rejected: RejectedRow[];
}

export interface RejectedRow {
  path: string;
  sample: string;
  reason: string;
}

/**
 * Render every output from the kept samples, in sample-id order: an order that depends on
 * nothing but the samples themselves (reordering values in the manifest moves no row, so the
 * lock's "nothing changed" is the truth), and that is shuffled, as training data should be.
 * With `write: false` nothing touches disk: `verify` and `--frozen` use that to learn what a
 * build would produce.
 */
export async function emit(m: Manifest, runs: SampleRun[], opts: { write: boolean }): Promise<EmitResult> {
  const kept = runs.filter((r) => r.status === "kept").sort((a, b) => (a.sample.id < b.sample.id ? -1 : a.sample.id > b.sample.id ? 1 : 0));
  const outputs: LockOutput[] = [];
  const splits = new Map<string, string>();
  const rejected: RejectedRow[] = [];
  for (const out of m.outputs) {
    const groups = groupBySplit(m, out, kept);
    if (out.split && splits.size === 0) for (const [name, rs] of groups) for (const run of rs) if (name !== undefined) splits.set(run.sample.id, name);
    const def = outputDef(m, out);
    for (const target of outputTargets(out)) {
      const rs = groups.get(target.split)!;
      const result =
        out.format === "files"
          ? await emitFiles(m, out, rs, target.abs, opts.write)
          : await emitLines(m, out, rs, target.abs, opts.write, (sample, reason) => rejected.push({ path: target.path, sample, reason }));
      outputs.push({ path: target.path, ...result, def });
    }
  }
  return { outputs, splits, rejected };
}

/** Everything an output's content depends on besides the samples themselves. */
export function outputDef(m: Manifest, out: Output): string {
  return hashValue({
    render: RENDER_VERSION,
    format: out.format,
    seed: m.seed,
    split: out.split,
    // Only on split outputs, whose rows it can move: other outputs keep the definition they had.
    ...(out.split && { split_version: SPLIT_VERSION, group_by: out.groupBy?.names ?? null }),
    templates: [out.system, out.prompt, out.completion, out.name].map((t) => t?.source ?? null),
    record: out.record?.map(([f, t]) => [f, t.source]) ?? null,
    names: out.format === "files" ? { dims: m.dimensions.map((d) => d.name), repeat: m.combine.repeat } : null,
  });
}

function groupBySplit(m: Manifest, out: Output, runs: SampleRun[]): Map<string | undefined, SampleRun[]> {
  if (!out.split) return new Map([[undefined, runs]]);
  const groups = new Map<string | undefined, SampleRun[]>(out.split.map(([name]) => [name, []]));
  const unitOf = splitUnit(out);
  const { splits } = assignSplits(m.seed, runs.map(unitOf), out.split);
  for (const run of runs) groups.get(splits.get(unitOf(run))!)!.push(run);
  return groups;
}

/**
 * What a split keeps together: the combination (so repeats never straddle splits), or with
 * `group_by` the values of those dimensions alone, identified as the combination of just them.
 */
function splitUnit(out: Output): (run: SampleRun) => string {
  const by = out.groupBy;
  if (!by) return (run) => run.sample.comboId;
  return (run) =>
    comboId(
      by.names,
      by.indexes.map((i) => run.sample.values[i]!),
    );
}

/** JSONL, rendered and written in ~1 MB chunks and hashed as it goes: memory stays flat however large the dataset. */
async function emitLines(
  m: Manifest,
  out: Output,
  runs: SampleRun[],
  abs: string,
  write: boolean,
  reject: (sample: string, reason: string) => void,
): Promise<{ rows: number; hash: string }> {
  const hasher = createHash128();
  const writer = write ? await AtomicFileWriter.open(abs) : undefined;
  // Encoded once, for the hash and the file alike.
  const flush = async (chunk: string) => {
    const bytes = Buffer.from(chunk, "utf8");
    hasher.update(bytes);
    await writer?.write(bytes);
  };
  let rows = 0;
  try {
    let chunk = "";
    for (const run of runs) {
      const scope = outputScope(m, run);
      let record: Record<string, unknown>;
      try {
        record = renderRecord(out, scope);
      } catch (err) {
        const why = dataRenderProblem(err, outputReads(out), scope);
        if (!why) throw err;
        reject(run.sample.id, why);
        continue;
      }
      const why = rejectedBy(out, record);
      if (why) {
        reject(run.sample.id, why);
        continue;
      }
      rows++;
      chunk += JSON.stringify(record) + "\n";
      if (chunk.length >= 1 << 20) {
        await flush(chunk);
        chunk = "";
      }
    }
    await flush(chunk);
    await writer?.commit();
  } catch (err) {
    await writer?.abort();
    throw err;
  }
  return { rows, hash: hasher.digest() };
}

/** The tutorial's layout: prompts/NAME.txt and completions/NAME.txt, one pair per sample. */
async function emitFiles(m: Manifest, out: Output, runs: SampleRun[], dir: string, write: boolean): Promise<{ rows: number; hash: string }> {
  const scopes = runs.map((run) => outputScope(m, run));
  const raw = runs.map((run, i) => ({
    id: run.sample.id,
    // A name template that already says `.txt` means the file, not `x.txt.txt`.
    raw: (out.name ? renderTemplate(out.name, scopes[i]!) : defaultName(m, run)).replace(/\.txt$/i, ""),
  }));
  const names = uniqueNames(raw);
  const files: [string, string, string][] = runs.map((run, i) => [
    names.get(run.sample.id)!,
    renderTemplate(out.prompt!, scopes[i]!),
    renderTemplate(out.completion!, scopes[i]!),
  ]);
  const digest = filesDigest(files);
  if (write) {
    for (const sub of ["prompts", "completions"] as const) {
      const folder = join(dir, sub);
      await makeDirs(folder);
      const wanted = new Set(files.map(([n]) => `${n}.txt`));
      for (const f of await readdir(folder)) if (f.endsWith(".txt") && !wanted.has(f)) await rm(join(folder, f), { force: true });
      for (const [n, p, c] of files) await writeFileAtomic(join(folder, `${n}.txt`), sub === "prompts" ? p : c, { fsync: false });
    }
  }
  return { rows: files.length, hash: digest };
}

/** `science fiction` × `Paris` × repeat 2 → `science-fiction_Paris_2`. */
function defaultName(m: Manifest, run: SampleRun): string {
  const parts = m.dimensions.map((d, i) => (d.kind === "glob" ? run.sample.values[i]!.name! : run.sample.values[i]!.text.slice(0, 40)));
  if (m.combine.repeat > 1) parts.push(String(run.sample.repeat));
  return parts.join("_");
}

/** The hash of a `files` output: its (name, prompt, completion) triples in name order. */
export function filesDigest(files: [string, string, string][]): string {
  return hash128(
    files
      .map(([n, p, c]) => `${n}\0${p}\0${c}`)
      .sort()
      .join("\0\0"),
  );
}

/** The rejected rows as one warning per output, naming a few samples. */
export function rejectionWarnings(rejected: RejectedRow[]): string[] {
  const byPath = new Map<string, RejectedRow[]>();
  for (const r of rejected) byPath.set(r.path, [...(byPath.get(r.path) ?? []), r]);
  return [...byPath].map(([path, rs]) => {
    const ids = rs.slice(0, 5).map((r) => r.sample);
    return `${path}: left out ${rs.length} row${rs.length === 1 ? "" : "s"} (sample${rs.length === 1 ? "" : "s"} ${ids.join(", ")}${rs.length > 5 ? ", …" : ""}): ${rs[0]!.reason}`;
  });
}
