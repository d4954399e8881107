import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { ChatRequest } from "../plan/request.js";
import { tooRecentToTrust } from "../util/file-times.js";

export const CACHE_FORMAT = 1;

/** One model answer, stored under the hash of the exact request that produced it. */
export interface CacheEntry {
  format: typeof CACHE_FORMAT;
  key: string;
  request: ChatRequest;
  response: {
    text: string;
    finish_reason: string;
    usage: { input_tokens: number; output_tokens: number } | null;
    model: string | null;
    system_fingerprint: string | null;
    request_id: string | null;
  };
  /** True for the echo provider: never a real model's answer. The key differs too (provider is part of it). */
  offline: boolean;
  created_at: string;
  duration_ms: number;
}

/**
 * A content-addressed store of answers: `objects/ab/abcdef….json`. Entries are written atomically
 * and checked on read; a corrupt one is removed and reported, never trusted. Failures are never
 * stored. Safe to share between checkouts, machines and concurrent builds: the same key always
 * holds an equivalent answer, so a lost race costs nothing.
 */
export class Cache {
  readonly objects: string;

  constructor(
    readonly dir: string,
    private readonly onWarning: (message: string) => void = () => {},
  ) {
    this.objects = join(dir, "objects");
  }

  pathOf(key: string): string {
    return join(this.objects, key.slice(0, 2), `${key}.json`);
  }

  /**
   * List every key once, so that lookups of absent keys cost no system call: worth it when a
   * build will look up far more keys than a directory listing costs. Entries written here later
   * are added; one written by another process after the listing is merely requested again.
   */
  snapshot(): void {
    const keys = new Set<string>();
    let shards: string[] = [];
    try {
      shards = readdirSync(this.objects);
    } catch {
      // no cache yet
    }
    for (const shard of shards) for (const f of readdirSync(join(this.objects, shard))) if (f.endsWith(".json")) keys.add(f.slice(0, -5));
    this.known = keys;
  }

  private known?: Set<string>;

  /** The entry, if present and sound. A corrupt one is removed unless `evict: false` (verify only looks). */
  async get(key: string, opts: { evict?: boolean } = {}): Promise<CacheEntry | undefined> {
    if (this.known ? !this.known.has(key) : !existsSync(this.pathOf(key))) return undefined;
    let text: string;
    try {
      // Synchronous on purpose: for small files it is several times faster than fs/promises
      // (no thread-pool round trip), and a rebuild reads one entry per sample.
      text = readFileSync(this.pathOf(key), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
    const entry = parseEntry(text, key);
    if (entry) return entry;
    if (opts.evict === false) return undefined;
    this.onWarning(`cache entry ${key} was corrupt and has been removed; it will be requested again`);
    await rm(this.pathOf(key), { force: true });
    return undefined;
  }

  async has(key: string): Promise<boolean> {
    try {
      await stat(this.pathOf(key));
      return true;
    } catch {
      return false;
    }
  }

  /**
   * True if every key has an entry (existence only: a no-op build's check). With a `memo` (a
   * name for this set of keys: the hash of the lock that lists them), a shard whose folder has
   * not changed since the same set was last known complete is not checked again: a folder's
   * mtime moves whenever an entry in it is added or removed. A no-op rebuild of 100,000 samples
   * then costs 256 stats instead of 100,000.
   */
  hasAll(keys: string[], memo?: string): boolean {
    const seen = memo ? this.readMemo(memo) : {};
    const mtimes = new Map<string, number | undefined>();
    for (const k of keys) {
      const shard = k.slice(0, 2);
      let m = mtimes.get(shard);
      if (!mtimes.has(shard)) mtimes.set(shard, (m = statSync(join(this.objects, shard), { throwIfNoEntry: false })?.mtimeMs));
      if (m === undefined) return false;
      if (seen[shard] !== m && !existsSync(this.pathOf(k))) return false;
    }
    if (memo) this.writeMemo(memo, mtimes);
    return true;
  }

  /** After a build, whose lock's keys are all in the cache (it just read or wrote them). */
  rememberComplete(keys: string[], memo: string): void {
    const mtimes = new Map<string, number | undefined>();
    for (const folder of this.shardFolders(keys)) mtimes.set(basename(folder), statSync(folder, { throwIfNoEntry: false })?.mtimeMs);
    this.writeMemo(memo, mtimes);
  }

  /** The folders holding these keys. */
  shardFolders(keys: string[]): string[] {
    const shards = new Set<string>();
    for (const k of keys) shards.add(k.slice(0, 2));
    return [...shards].sort().map((shard) => join(this.objects, shard));
  }

  private readMemo(memo: string): Record<string, number> {
    try {
      return JSON.parse(readFileSync(join(this.dir, "state", `${memo}.json`), "utf8")) as Record<string, number>;
    } catch {
      return {};
    }
  }

  private writeMemo(memo: string, mtimes: Map<string, number | undefined>): void {
    const now: Record<string, number> = {};
    for (const [shard, m] of mtimes) {
      if (m !== undefined && !tooRecentToTrust(m)) now[shard] = m;
    }
    const path = join(this.dir, "state", `${memo}.json`);
    try {
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(`${path}.tmp-${process.pid}`, JSON.stringify(now));
      renameSync(`${path}.tmp-${process.pid}`, path);
    } catch {
      // Only a shortcut for next time; a read-only cache simply checks every key.
    }
  }

  async put(entry: CacheEntry): Promise<void> {
    // Temp file + rename, so a reader (or a killed writer) never sees half an entry. No fsync: a
    // reader validates entries, so even a power loss can only cost a re-request, never a wrong
    // answer. Two calls per entry, not five: this runs once per answer, at full request rate.
    const path = this.pathOf(entry.key);
    const shard = dirname(path);
    if (!this.shards.has(shard)) {
      await mkdir(shard, { recursive: true });
      this.shards.add(shard);
    }
    const tmp = `${path}.tmp-${process.pid}-${(this.seq++).toString(36)}`;
    try {
      await writeFile(tmp, JSON.stringify(entry) + "\n");
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.known?.add(entry.key);
  }

  private readonly shards = new Set<string>();
  private seq = 0;

  /** An entry's stored bytes, exactly as on disk (what a remote holds), or undefined if absent. */
  async readRaw(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.pathOf(key));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
  }

  /**
   * Store bytes fetched from elsewhere (a remote) as an entry, atomically, as put() does. The
   * caller validates them first: this stores what it is given.
   */
  async putRaw(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const shard = dirname(path);
    if (!this.shards.has(shard)) {
      await mkdir(shard, { recursive: true });
      this.shards.add(shard);
    }
    const tmp = `${path}.tmp-${process.pid}-${(this.seq++).toString(36)}`;
    try {
      await writeFile(tmp, bytes);
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    this.known?.add(key);
  }

  async delete(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  /** Every stored key, plus stray temp files left by killed writers. */
  async list(): Promise<{ keys: string[]; strays: string[] }> {
    const keys: string[] = [];
    const strays: string[] = [];
    let shards: string[];
    try {
      shards = await readdir(this.objects);
    } catch {
      return { keys, strays };
    }
    for (const shard of shards.sort()) {
      for (const f of (await readdir(join(this.objects, shard))).sort()) {
        if (f.endsWith(".json")) keys.push(f.slice(0, -5));
        else if (f.includes(".tmp-")) strays.push(join(this.objects, shard, f));
      }
    }
    return { keys, strays };
  }
}

/** The entry these bytes hold, if they are a sound entry stored under `key`. */
export function parseEntry(text: string, key: string): CacheEntry | undefined {
  try {
    const e = JSON.parse(text) as CacheEntry;
    if (e.format !== CACHE_FORMAT || e.key !== key || typeof e.response?.text !== "string" || typeof e.response.finish_reason !== "string") return undefined;
    return e;
  } catch {
    return undefined;
  }
}
