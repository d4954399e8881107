import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import type { ChatRequest } from "../plan/request.js";
import { AtomicFileWriter, writeFileAtomic } from "../util/fs-atomic.js";

/**
 * A batch this cache is waiting for, kept in `cache/state/batches/` from before it is created
 * until its answers are in the cache: a build killed while it is pending finds it again, and never
 * submits its requests twice. Named by the input file (known before the batch is created): a
 * record without a batch id is a build killed between upload and create, and the endpoint's list
 * of batches says whether the create went through.
 *
 * Beside each record, `<name>.requests.jsonl` holds the requests of its lines, one a line: an
 * answer is stored with the request it answers, and a batch collected after the manifest changed
 * has answers no request of this build's asks for. Paid for all the same, they are kept.
 */
export interface BatchRecord {
  /** The uploaded input file. */
  input_file_id: string;
  /** Absent until the endpoint has answered the create. */
  batch_id?: string;
  /** Who answers (ModelConfig.endpoint), the model, and the step it was made for. */
  endpoint: string;
  model: string;
  step: string;
  /** The cache keys of its lines. */
  custom_ids: string[];
  /** Provenance only: when it was submitted (ISO). */
  created_at: string;
  /** Its step had `on_empty: retry`: an empty answer is not kept, as a direct one is not. */
  retry_empty?: true;
  /**
   * The manifest of the build that submitted it (its path; absent in older records): a build of
   * another manifest sharing the cache (a second checkout, another project) is not the one to
   * warn about it, nor to withhold its stamp for it.
   */
  manifest?: string;
}

function dirOf(cacheDir: string): string {
  return join(cacheDir, "state", "batches");
}

function fileOf(cacheDir: string, inputFileId: string, ext = ".json"): string {
  // File ids are the endpoint's: kept to a safe file name.
  return join(dirOf(cacheDir), `${inputFileId.replace(/[^A-Za-z0-9_-]/g, "_")}${ext}`);
}

const REQUESTS = ".requests.jsonl";

/**
 * The requests of a batch's lines. Not fsynced: a torn file loses only what it would have kept
 * (each request read back is checked against the key it must have), never a wrong answer.
 */
export async function writeBatchRequests(cacheDir: string, inputFileId: string, reqs: readonly ChatRequest[]): Promise<void> {
  const w = await AtomicFileWriter.open(fileOf(cacheDir, inputFileId, REQUESTS), { fsync: false });
  try {
    // In pieces: an input file of 200 MB is not copied into one more string of that size.
    let piece = "";
    for (const r of reqs) {
      piece += `${JSON.stringify(r)}\n`;
      if (piece.length >= 1 << 20) {
        await w.write(piece);
        piece = "";
      }
    }
    await w.write(piece);
    await w.commit();
  } catch (err) {
    await w.abort();
    throw err;
  }
}

/** The requests written for a batch; none when there is no such file (a record of an older version, or removed meanwhile). */
export async function readBatchRequests(cacheDir: string, inputFileId: string): Promise<ChatRequest[]> {
  const text = await readFile(fileOf(cacheDir, inputFileId, REQUESTS), "utf8").catch(() => "");
  const out: ChatRequest[] = [];
  for (const line of text.split("\n")) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as ChatRequest);
    } catch {
      // torn: that request is not kept
    }
  }
  return out;
}

export async function writeBatchRecord(cacheDir: string, r: BatchRecord): Promise<void> {
  await writeFileAtomic(fileOf(cacheDir, r.input_file_id), `${JSON.stringify(r)}\n`);
}

/** Its requests first: a build killed between the two leaves a record without them (its unwanted answers are then not kept), never requests no record names. */
export async function removeBatchRecord(cacheDir: string, inputFileId: string): Promise<void> {
  await rm(fileOf(cacheDir, inputFileId, REQUESTS), { force: true });
  await rm(fileOf(cacheDir, inputFileId), { force: true });
}

/** One batch's record as it is on the disk now (another build may have changed or removed it). */
export async function readBatchRecord(cacheDir: string, inputFileId: string): Promise<BatchRecord | undefined> {
  try {
    const r = JSON.parse(await readFile(fileOf(cacheDir, inputFileId), "utf8")) as BatchRecord;
    return r.input_file_id === inputFileId && Array.isArray(r.custom_ids) ? r : undefined;
  } catch {
    return undefined;
  }
}

/** Whether this cache records any batch (a look at one folder, for builds that would otherwise ask nothing). */
export async function hasBatchRecords(cacheDir: string): Promise<boolean> {
  return (await readdir(dirOf(cacheDir)).catch(() => [] as string[])).some((n) => n.endsWith(".json"));
}

/** Every batch record, oldest first; a record that does not read (a torn write cannot happen, a hand edit can) is skipped. */
export async function readBatchRecords(cacheDir: string): Promise<BatchRecord[]> {
  const dir = dirOf(cacheDir);
  const names = await readdir(dir).catch(() => [] as string[]);
  const out: BatchRecord[] = [];
  for (const n of names) {
    if (!n.endsWith(".json")) continue;
    try {
      const r = JSON.parse(await readFile(join(dir, n), "utf8")) as BatchRecord;
      if (typeof r.input_file_id === "string" && Array.isArray(r.custom_ids) && typeof r.endpoint === "string") out.push(r);
    } catch {
      // not ours, or removed meanwhile
    }
  }
  return out.sort((a, b) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0));
}
