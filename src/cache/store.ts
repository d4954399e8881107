import { existsSync, readdirSync, readFileSync, renameSync, statSync, unlink as unlinkCallback, writeFile as writeFileCallback, writeFileSync } from "node:fs";
import { link, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { SynthbuildError, UsageError } from "../errors.js";
import type { ChatRequest } from "../plan/request.js";
import { tooRecentToTrust } from "../util/file-times.js";
import { hash128 } from "../util/hash.js";
import { makeDirs, makeDirsSync } from "../util/make-dirs.js";

// An answer is stored as a temp file, a link and an unlink, once per request. Through the callback
// API: fs/promises opens a FileHandle for each, which cost Node 20 about half a millisecond of
// main-thread CPU an answer (a cold build of 6,561 requests: 3.2 s in openFileHandle alone).
const writeTemp = promisify(writeFileCallback);
const unlinkCallbackP = promisify(unlinkCallback);
const unlinkTemp = (path: string) => unlinkCallbackP(path).catch(() => {});

/**
 * 1: one JSON object.
 * 2: the JSON object, then a line holding the xxh128 of the first line's text: a byte changed in
 *    place is caught on read, not only a file cut short. Format-1 entries are still read (their
 *    keys are key version 1, which only `synthbuild migrate` looks up).
 */
export const CACHE_FORMAT = 2;

/** One model answer, stored under the hash of the exact request that produced it. */
export interface CacheEntry {
  format: 1 | 2;
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
  /** The Batch API batch that answered it (absent for a direct request). */
  batch?: string;
  /** The project (manifest name) whose build stored it: `gc` of a shared cache removes only its own. */
  project?: string;
  created_at: string;
  duration_ms: number;
}

/** link(2) answers: the name exists, or this filesystem has no hard links (then a check, then rename). */
const LINK_REFUSED = new Set(["EEXIST", "EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS"]);

/** Per process, not per Cache: two Cache objects on one folder must not share a temp name. */
let tempSeq = 0;

/** The cache could not be written: a local failure that stops the build, never a sample's. */
export class CacheWriteError extends SynthbuildError {
  readonly exitCode = 1;
}

/** An entry's bytes on disk: its JSON, then the checksum of that line. */
export function serializeEntry(entry: CacheEntry): string {
  const json = JSON.stringify(entry);
  return `${json}\n${JSON.stringify(`xxh128:${hash128(json)}`)}\n`;
}

/** The entry these bytes hold, if they are whole, sound and stored under `key`. */
export function parseEntry(text: string, key: string): CacheEntry | undefined {
  const cut = text.indexOf("\n");
  const json = cut === -1 ? text : text.slice(0, cut);
  try {
    const e = JSON.parse(json) as CacheEntry;
    if (e.key !== key || typeof e.response?.text !== "string" || typeof e.response.finish_reason !== "string") return undefined;
    if (e.format === 2) {
      if (cut === -1 || text.slice(cut + 1) !== `${JSON.stringify(`xxh128:${hash128(json)}`)}\n`) return undefined;
    } else if (e.format !== 1) return undefined;
    return e;
  } catch {
    return undefined;
  }
}

/**
 * A content-addressed store of answers: `objects/ab/abcdef….json`. Entries are written atomically
 * and checked on read; a corrupt one is removed and reported, never trusted. Failures are never
 * stored. Safe to share between checkouts, machines and concurrent builds: the first answer
 * stored under a key wins, and a writer that finds one already there adopts it, so every lock
 * names an answer the cache keeps.
 */
export class Cache {
  readonly objects: string;

  constructor(
    readonly dir: string,
    private readonly onWarning: (message: string) => void = () => {},
    /** The project storing answers here (recorded in each entry it stores). */
    readonly project?: string,
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

  /**
   * The entry, if present and sound. A corrupt one is removed unless `evict: false`. `fresh`: look
   * on the disk even after a snapshot (another build sharing the folder may have stored it since).
   */
  async get(key: string, opts: { evict?: boolean; fresh?: boolean } = {}): Promise<CacheEntry | undefined> {
    if (opts.fresh && this.known && !this.known.has(key) && existsSync(this.pathOf(key))) this.known.add(key);
    if (this.known ? !this.known.has(key) : !existsSync(this.pathOf(key))) return undefined;
    const text = this.readText(key);
    if (text === undefined) return undefined;
    const entry = parseEntry(text, key);
    if (entry) return entry;
    if (opts.evict === false) return undefined;
    this.onWarning(`cache entry ${key} was corrupt and has been removed; it will be requested again`);
    await this.delete(key);
    return undefined;
  }

  private readText(key: string): string | undefined {
    try {
      // Synchronous on purpose: for small files it is several times faster than fs/promises
      // (no thread-pool round trip), and a rebuild reads one entry per sample.
      return readFileSync(this.pathOf(key), "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw err;
    }
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
   * The first key without an entry (existence only: a no-op build's check), or undefined when
   * all are there. With a `memo` (a name for this set of keys: the hash of the lock that lists
   * them), a shard whose folder has not changed since the same set was last found complete is not
   * checked again: a folder's mtime moves whenever an entry in it is added or removed. A no-op
   * rebuild of 100,000 samples then costs 256 stats instead of 100,000.
   *
   * The memo records only what this call checked: each folder's time is read before the entries
   * in it are, so an entry removed during the check moves the time past what is recorded.
   */
  firstMissing(keys: string[], memo?: string): string | undefined {
    const seen = memo ? this.readMemo(memo) : {};
    const mtimes = new Map<string, number | undefined>();
    for (const k of keys) {
      const shard = k.slice(0, 2);
      let m = mtimes.get(shard);
      if (!mtimes.has(shard)) mtimes.set(shard, (m = statSync(join(this.objects, shard), { throwIfNoEntry: false })?.mtimeMs));
      if (m === undefined) return k;
      if (seen[shard] !== m && !existsSync(this.pathOf(k))) return k;
    }
    if (memo) this.writeMemo(memo, mtimes);
    return undefined;
  }

  /** The folders holding these keys. */
  shardFolders(keys: string[]): string[] {
    const shards = new Set<string>();
    for (const k of keys) shards.add(k.slice(0, 2));
    return [...shards].sort().map((shard) => join(this.objects, shard));
  }

  private memoPath(memo: string): string {
    return join(this.dir, "state", "complete", `${memo}.json`);
  }

  private readMemo(memo: string): Record<string, number> {
    try {
      return JSON.parse(readFileSync(this.memoPath(memo), "utf8")) as Record<string, number>;
    } catch {
      return {};
    }
  }

  private writeMemo(memo: string, mtimes: Map<string, number | undefined>): void {
    const now: Record<string, number> = {};
    for (const [shard, m] of mtimes) {
      if (m !== undefined && !tooRecentToTrust(m)) now[shard] = m;
    }
    const path = this.memoPath(memo);
    try {
      makeDirsSync(dirname(path));
      writeFileSync(`${path}.tmp-${process.pid}`, JSON.stringify(now));
      renameSync(`${path}.tmp-${process.pid}`, path);
    } catch {
      // Only a shortcut for next time; a read-only cache simply checks every key.
    }
  }

  /**
   * Before the first request is paid for: can answers be kept here at all? A read-only or
   * missing mount found now costs nothing; found after the answers arrive, it costs all of them.
   */
  async checkWritable(): Promise<void> {
    const probe = join(this.objects, `.probe-${process.pid}`);
    try {
      await makeDirs(this.objects);
      await writeFile(probe, "");
      await rm(probe, { force: true });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? "error";
      throw new UsageError(
        `the cache folder ${this.dir} is not writable (${code}): answers could not be kept`,
        "check the folder and its mount, or pass --cache-dir to use another",
      );
    }
  }

  /**
   * Store an answer, unless one is already stored under its key: then that one is returned and
   * this one dropped (first writer wins). Two checkouts sharing a cache that request the same new
   * key at temperature 1 thus end up naming the same answer in their locks.
   */
  async put(entry: CacheEntry): Promise<CacheEntry> {
    const path = this.pathOf(entry.key);
    const shard = dirname(path);
    const tmp = `${path}.tmp-${process.pid}-${(tempSeq++).toString(36)}`;
    try {
      if (!this.shards.has(shard)) {
        await makeDirs(shard);
        this.shards.add(shard);
      }
      // No fsync: a reader validates entries, so even a power loss can only cost a re-request,
      // never a wrong answer.
      if (this.project !== undefined && entry.project === undefined) entry = { ...entry, project: this.project };
      await writeTemp(tmp, serializeEntry(entry));
      const stored = await this.claim(tmp, path, entry);
      this.known?.add(entry.key);
      return stored;
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      const code = (err as NodeJS.ErrnoException).code;
      if (code)
        throw new CacheWriteError(
          `cannot write to the cache ${this.dir} (${code}: ${(err as Error).message.split(",")[0]})`,
          "free space or fix the folder, then build again: answers already stored are kept",
        );
      throw err;
    }
  }

  /** link() fails if the name exists: the atomic "create only if absent" that rename is not. */
  private async claim(tmp: string, path: string, entry: CacheEntry): Promise<CacheEntry> {
    try {
      await link(tmp, path);
      await unlinkTemp(tmp);
      return entry;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (!LINK_REFUSED.has(code ?? "")) throw err;
    }
    // Already stored (or no hard links here, where the check below leaves a small window).
    const text = this.readText(entry.key);
    const existing = text === undefined ? undefined : parseEntry(text, entry.key);
    if (existing) {
      await rm(tmp, { force: true });
      return existing;
    }
    await rename(tmp, path);
    return entry;
  }

  private readonly shards = new Set<string>();

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
      await makeDirs(shard);
      this.shards.add(shard);
    }
    const tmp = `${path}.tmp-${process.pid}-${(tempSeq++).toString(36)}`;
    try {
      await writeFile(tmp, bytes);
      // First writer wins here too: a sound entry already stored is kept.
      try {
        await link(tmp, path);
      } catch (err) {
        if (!LINK_REFUSED.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
        const text = this.readText(key);
        if (text === undefined || !parseEntry(text, key)) await rename(tmp, path);
      }
    } finally {
      await rm(tmp, { force: true }).catch(() => {});
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
      if (shard.startsWith(".probe-")) continue;
      for (const f of (await readdir(join(this.objects, shard))).sort()) {
        if (f.endsWith(".json")) keys.push(f.slice(0, -5));
        else if (f.includes(".tmp-")) strays.push(join(this.objects, shard, f));
      }
    }
    return { keys, strays };
  }
}
