import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { type CacheEntry, parseEntry } from "../../src/cache/store.js";
import { initHashing } from "../../src/util/hash.js";

/**
 * The cache's packs read by the tests themselves (by lines, not through the store's index), so
 * that a test of the store does not trust the code it tests to tell it what is on disk.
 */
export interface PackScan {
  /** keys with a sound record, first stored first */
  valid: string[];
  /** records framed as entries whose checksum or key does not hold (`packs/000001.pack@offset`) */
  corrupt: string[];
  /** bytes that are no record at all: a write cut short by a killed writer (`packs/…@offset`) */
  torn: string[];
}

const START = '{"format":2,"key":"';

export async function scanPacks(cacheDir: string): Promise<PackScan> {
  await initHashing();
  const scan: PackScan = { valid: [], corrupt: [], torn: [] };
  const seen = new Set<string>();
  const packs = join(cacheDir, "packs");
  for (const name of (await readdir(packs).catch(() => [] as string[])).filter((n) => /^\d{6}\.pack$/.test(n)).sort()) {
    const text = (await readFile(join(packs, name))).toString("latin1");
    const lines = text.split("\n");
    let at = 0;
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      const lineAt = at;
      at += line.length + 1;
      if (i === lines.length - 1) {
        if (line.length) scan.torn.push(`packs/${name}@${lineAt}`);
        break;
      }
      const start = line.lastIndexOf(START);
      const sum = lines[i + 1];
      if (start < 0 || sum === undefined || !/^"xxh128:[0-9a-f]{32}"$/.test(sum)) {
        scan.torn.push(`packs/${name}@${lineAt}`);
        continue;
      }
      if (start > 0) scan.torn.push(`packs/${name}@${lineAt}`);
      const json = Buffer.from(line.slice(start), "latin1").toString("utf8");
      const key = json.slice(START.length, json.indexOf('"', START.length));
      if (parseEntry(`${json}\n${sum}\n`, key)) {
        if (!seen.has(key)) scan.valid.push(key), seen.add(key);
      } else scan.corrupt.push(`packs/${name}@${lineAt + start}`);
      at += sum.length + 1;
      i++;
    }
  }
  return scan;
}

/** Every key the cache holds a sound answer for, loose or packed, sorted. */
export async function storedKeys(cacheDir: string): Promise<string[]> {
  const keys = new Set((await scanPacks(cacheDir)).valid);
  const objects = join(cacheDir, "objects");
  for (const shard of await readdir(objects).catch(() => [] as string[])) {
    for (const f of await readdir(join(objects, shard)).catch(() => [] as string[])) if (f.endsWith(".json")) keys.add(f.slice(0, -5));
  }
  return [...keys].sort();
}

/** Where a key's first packed record starts, and the pack holding it. */
export async function packedRecord(cacheDir: string, key: string): Promise<{ path: string; offset: number; text: string }> {
  const packs = join(cacheDir, "packs");
  for (const name of (await readdir(packs)).filter((n) => /^\d{6}\.pack$/.test(n)).sort()) {
    const path = join(packs, name);
    const bytes = await readFile(path);
    const offset = bytes.indexOf(`${START}${key}"`);
    if (offset < 0) continue;
    const end = bytes.indexOf("\n", bytes.indexOf("\n", offset) + 1);
    return { path, offset, text: bytes.subarray(offset, end + 1).toString("utf8") };
  }
  throw new Error(`no packed record of ${key} under ${cacheDir}`);
}

/** Change a key's packed record in place (same length), as a bad disk or a stray edit would. */
export async function alterPacked(cacheDir: string, key: string, from: string, to: string): Promise<void> {
  if (Buffer.byteLength(from) !== Buffer.byteLength(to)) throw new Error("alterPacked keeps the record's length");
  const { path, offset, text } = await packedRecord(cacheDir, key);
  const at = text.indexOf(from, START.length + key.length);
  if (at < 0) throw new Error(`${from} is not in the record of ${key}`);
  const { open } = await import("node:fs/promises");
  const fh = await open(path, "r+");
  try {
    await fh.write(Buffer.from(to), 0, Buffer.byteLength(to), offset + Buffer.byteLength(text.slice(0, at)));
  } finally {
    await fh.close();
  }
}

/** Take answers out of the cache as `gc` does (the pack written again without them). */
export async function removeAnswers(cacheDir: string, keys: string[]): Promise<void> {
  const { Cache } = await import("../../src/cache/store.js");
  await initHashing();
  const cache = new Cache(cacheDir);
  await cache.remove(new Set(keys));
  cache.close();
}

/** The i-th test key: 32 hex digits. */
export const keyOf = (i: number): string => i.toString(16).padStart(32, "0");

/**
 * A cache entry of an echo answer, for the store's tests. Self-contained (no closure), so a test
 * may pass its source to a child process that stores entries too.
 */
export function testEntry(key: string, text: string, request: Partial<CacheEntry["request"]> = {}): CacheEntry {
  return {
    format: 2,
    key,
    request: { provider: "echo", endpoint: "echo", model: "echo", messages: [], params: {}, ...request },
    response: { text, finish_reason: "stop", usage: null, model: null, system_fingerprint: null, request_id: null },
    offline: true,
    created_at: "2026-01-01T00:00:00.000Z",
    duration_ms: 0,
  };
}
