import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { writeFileAtomic } from "../util/fs-atomic.js";

/**
 * A batch this cache is waiting for, kept in `cache/state/batches/` from before it is created
 * until its answers are in the cache: a build killed while it is pending finds it again, and never
 * submits its requests twice. Named by the input file (known before the batch is created): a
 * record without a batch id is a build killed between upload and create, and the endpoint's list
 * of batches says whether the create went through.
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
}

function dirOf(cacheDir: string): string {
  return join(cacheDir, "state", "batches");
}

function fileOf(cacheDir: string, inputFileId: string): string {
  // File ids are the endpoint's: kept to a safe file name.
  return join(dirOf(cacheDir), `${inputFileId.replace(/[^A-Za-z0-9_-]/g, "_")}.json`);
}

export async function writeBatchRecord(cacheDir: string, r: BatchRecord): Promise<void> {
  await writeFileAtomic(fileOf(cacheDir, r.input_file_id), `${JSON.stringify(r)}\n`);
}

export async function removeBatchRecord(cacheDir: string, inputFileId: string): Promise<void> {
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
