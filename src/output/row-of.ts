import { createReadStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { outputTargets } from "../manifest/output-targets.js";
import type { Manifest } from "../manifest/types.js";
import type { SampleRun } from "../plan/pipeline.js";
import { renderTemplate } from "../template/engine.js";
import { outputScope, rejectedBy, renderRecord } from "./rows.js";

/** Where one kept sample's row is, for `show`. */
export interface ShownRow {
  /** The file (or, for format files, the split's folder) it is in, or would be in. */
  path: string;
  split?: string;
  /** The record as the output renders it: the JSONL line, or a files output's prompt and completion. */
  record?: unknown;
  /** Found in that file as it is on disk (false: dist/ is older than this sample, or not built). */
  inDist: boolean;
  /** Why the output leaves it out, when its consumer would reject it. */
  leftOut?: string;
}

/**
 * A kept sample's row in every output. The file is found by reading dist/, not predicted, so
 * `show` says what was written: a split depends on the whole dataset (the small-sample
 * correction), which one sample alone cannot tell. `split` (from the lock) names the file when
 * the row is not on disk.
 */
export async function rowsOf(m: Manifest, run: SampleRun, split: string | undefined): Promise<ShownRow[]> {
  const scope = outputScope(m, run);
  const rows: ShownRow[] = [];
  for (const out of m.outputs) {
    const targets = outputTargets(out);
    // Not on disk: the lock's split names the file; with none (never built), no split is claimed.
    const predicted = (out.split ? targets.find((t) => t.split === split) : targets[0]) ?? { path: out.path, split: undefined };
    if (out.format === "files") {
      const record = { prompt: renderTemplate(out.prompt!, scope), completion: renderTemplate(out.completion!, scope) };
      let row: ShownRow = { path: predicted.path, split: predicted.split, record, inDist: false };
      for (const t of targets) {
        const name = await pairIn(t.abs, record.prompt, record.completion);
        if (name) {
          row = { path: `${t.path}/prompts/${name}`, split: t.split, record, inDist: true };
          break;
        }
      }
      rows.push(row);
      continue;
    }
    const record = renderRecord(out, scope);
    const leftOut = rejectedBy(out, record);
    if (leftOut) {
      rows.push({ path: out.path, record, inDist: false, leftOut });
      continue;
    }
    const line = JSON.stringify(record);
    let found: (typeof targets)[number] | undefined;
    for (const t of targets) if (!found && (await holdsLine(t.abs, line))) found = t;
    const at = found ?? predicted;
    rows.push({ path: at.path, split: at.split, record, inDist: found !== undefined });
  }
  return rows;
}

/** Line by line: a dist/ file can be larger than memory is happy to hold as one string. */
async function holdsLine(file: string, line: string): Promise<boolean> {
  const input = createReadStream(file, { encoding: "utf8" });
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const l of lines) if (l === line) return true;
    return false;
  } catch {
    return false; // not written yet
  } finally {
    lines.close();
    input.destroy();
  }
}

/** The name of the prompts/ file holding this pair (its completions/ twin holding the completion). */
async function pairIn(dir: string, prompt: string, completion: string): Promise<string | undefined> {
  const names = await readdir(join(dir, "prompts")).catch(() => [] as string[]);
  for (const n of names) {
    if (!n.endsWith(".txt")) continue;
    const p = await readFile(join(dir, "prompts", n), "utf8").catch(() => undefined);
    if (p !== prompt) continue;
    if ((await readFile(join(dir, "completions", n), "utf8").catch(() => undefined)) === completion) return n;
  }
  return undefined;
}
