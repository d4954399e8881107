import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFile as writeFileCallback, writeFileSync } from "node:fs";
import { link, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { SynthbuildError, UsageError } from "../errors.js";
import type { ChatRequest } from "../plan/request.js";
import { tooRecentToTrust } from "../util/file-times.js";
import { hash128, hash128Bytes } from "../util/hash.js";
import { makeDirs, makeDirsSync } from "../util/make-dirs.js";
import { PACKS, Pack, packable } from "./pack.js";

// A loose entry (an older version's, or one a pack cannot hold) is a temp file, a link and an
// unlink. Through the callback API: fs/promises opens a FileHandle for each, which cost Node 20
// about half a millisecond of main-thread CPU an answer.
const writeTemp = promisify(writeFileCallback);

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
  const json = entryJson(entry);
  return `${json}\n"xxh128:${hash128(json)}"\n`;
}

/** The line after the JSON: `"xxh128:` and 32 hex digits, `"` and a newline. */
const SUM_LINE_BYTES = 42;

/**
 * serializeEntry's bytes, with the JSON encoded once, straight into the buffer, and hashed there
 * (not encoded again for the checksum, nor copied into a joined text).
 */
export function entryBytes(entry: CacheEntry): Buffer {
  const json = entryJson(entry);
  // Room for the worst case (3 bytes a UTF-16 unit), but measured first when that would be large.
  const room = Buffer.allocUnsafe((json.length > 16_384 ? Buffer.byteLength(json) : json.length * 3) + 1 + SUM_LINE_BYTES);
  const size = room.write(json, 0);
  room[size] = 0x0a;
  room.write(`"xxh128:${hash128Bytes(room.subarray(0, size))}"\n`, size + 1, "latin1");
  return room.subarray(0, size + 1 + SUM_LINE_BYTES);
}

function entryJson(entry: CacheEntry): string {
  const json = JSON.stringify(entry);
  // Format and key first, whatever order the object was built in: a pack finds records by them.
  if (json.startsWith(`{"format":${entry.format},"key":`)) return json;
  const { format, key, ...rest } = entry;
  return JSON.stringify({ format, key, ...rest });
}

/** The entry these bytes hold, if they are whole, sound and stored under `key`. */
export function parseEntry(text: string, key: string): CacheEntry | undefined {
  const cut = text.indexOf("\n");
  const json = cut === -1 ? text : text.slice(0, cut);
  let e: CacheEntry;
  try {
    e = JSON.parse(json) as CacheEntry;
  } catch {
    return undefined;
  }
  if (e === null || typeof e !== "object" || e.key !== key || typeof e.response?.text !== "string" || typeof e.response.finish_reason !== "string")
    return undefined;
  // Outside the catch: hashing not set up is a bug to surface, not an entry to call corrupt (gc
  // would leave every answer out of the pack it writes).
  if (e.format === 2) {
    if (cut === -1 || text.slice(cut + 1) !== `${JSON.stringify(`xxh128:${hash128(json)}`)}\n`) return undefined;
  } else if (e.format !== 1) return undefined;
  return e;
}

/**
 * A content-addressed store of answers. New answers are appended to a pack (`packs/`, see
 * pack.ts); entries an older version stored one file each (`objects/ab/abcdef….json`) are still
 * read, and win over a packed record of the same key (they were there first). Entries are checked
 * on read; a corrupt one is reported and never trusted. Failures are never stored. Safe to share
 * between checkouts and concurrent builds on one filesystem: the first answer stored under a key
 * wins, and a writer that finds one already there adopts it, so every lock names an answer the
 * cache keeps. Between machines, share it through a remote (`cache.remote`).
 */
export class Cache {
  readonly objects: string;
  private readonly pack: Pack;

  constructor(
    readonly dir: string,
    private readonly onWarning: (message: string) => void = () => {},
    /** The project storing answers here (recorded in each entry it stores). */
    readonly project?: string,
  ) {
    this.objects = join(dir, "objects");
    this.pack = new Pack(dir, (key, record) => parseEntry(record.toString("utf8"), key) !== undefined);
  }

  /** Where a loose entry of this key is (or would be). */
  pathOf(key: string): string {
    return join(this.objects, key.slice(0, 2), `${key}.json`);
  }

  /**
   * List every loose key once, so that lookups of absent keys cost no system call: worth it when
   * a build will look up far more keys than a directory listing costs. (Packed keys are indexed
   * when the pack is first read.)
   */
  snapshot(): void {
    const keys = new Set<string>();
    let shards: string[] = [];
    try {
      shards = readdirSync(this.objects);
    } catch {
      // no loose entries
    }
    for (const shard of shards) {
      if (shard.startsWith(".probe-")) continue;
      for (const f of readdirSync(join(this.objects, shard))) if (f.endsWith(".json")) keys.add(f.slice(0, -5));
    }
    this.looseKeys = keys;
  }

  private looseKeys?: Set<string>;

  /** Whether `objects/` exists: a cache this version made has no loose entries, and asks nothing of the disk for them. */
  private looseFolder?: boolean;

  private hasLoose(key: string, fresh = false): boolean {
    if (this.looseKeys && !fresh) return this.looseKeys.has(key);
    if (fresh || this.looseFolder === undefined) this.looseFolder = existsSync(this.objects);
    return this.looseFolder && existsSync(this.pathOf(key));
  }

  /**
   * The entry, if present and sound. A corrupt loose one is removed unless `evict: false` (a
   * corrupt packed record is left for `gc`: it is never served). `fresh`: look on the disk even
   * after a snapshot (another build sharing the folder may have stored it since).
   */
  async get(key: string, opts: { evict?: boolean; fresh?: boolean } = {}): Promise<CacheEntry | undefined> {
    let corrupt = false;
    if (this.hasLoose(key, opts.fresh)) {
      const text = this.readLoose(key);
      if (text !== undefined) {
        const entry = parseEntry(text, key);
        if (entry) return entry;
        corrupt = true;
        if (opts.evict !== false) await this.deleteLoose(key);
      }
    }
    let corruptPacked = false;
    for (const record of this.pack.candidates(key, opts.fresh)) {
      const entry = parseEntry(record.toString("utf8"), key);
      if (entry) return entry;
      corrupt = corruptPacked = true;
    }
    if (corrupt && opts.evict !== false) {
      if (corruptPacked) this.voidPacked(key);
      this.onWarning(`cache entry ${key} was corrupt and has been removed; it will be requested again`);
    }
    return undefined;
  }

  private readLoose(key: string): string | undefined {
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
    return this.pack.has(key) || existsSync(this.pathOf(key));
  }

  /**
   * The first key without an entry (existence only: a no-op build's check), or undefined when
   * all are there. With a `memo` (a name for this set of keys: the hash of the lock that lists
   * them), the keys are not looked up again while nothing can have been removed since the same
   * set was last found complete: no loose folder's mtime moved (it moves whenever an entry in it
   * is added or removed), and the pack is the same file, no shorter (records are only appended;
   * only gc removes any, by writing a new pack). A no-op rebuild of 100,000 samples then costs a
   * few hundred stats instead of 100,000 lookups.
   *
   * The memo records only what this call checked: each folder's time is read before the entries
   * in it are, so an entry removed during the check moves the time past what is recorded.
   */
  firstMissing(keys: string[], memo?: string): string | undefined {
    const seen = memo ? this.readMemo(memo) : {};
    const packs = this.packState();
    // A pack the memo saw must still be there, no shorter (one it did not see only adds answers).
    const packIntact = Object.entries(seen).every(([id, size]) => !id.startsWith("pack:") || (packs[id] !== undefined && size <= packs[id]!));
    const mtimes = new Map<string, number | undefined>();
    for (const k of keys) {
      const shard = k.slice(0, 2);
      let m = mtimes.get(shard);
      if (!mtimes.has(shard)) mtimes.set(shard, (m = statSync(join(this.objects, shard), { throwIfNoEntry: false })?.mtimeMs));
      if (packIntact && seen[shard] === (m ?? -1)) continue;
      if (!(m !== undefined && existsSync(this.pathOf(k))) && !this.pack.has(k)) return k;
    }
    if (memo) {
      const now: Record<string, number> = { ...packs };
      for (const [shard, m] of mtimes) {
        if (m === undefined) now[shard] = -1;
        else if (!tooRecentToTrust(m)) now[shard] = m;
      }
      this.writeMemo(memo, now);
    }
    return undefined;
  }

  /** Each pack file, named by its path, inode and birth time (a rewrite is another file), with its size now. */
  private packState(): Record<string, number> {
    const state: Record<string, number> = {};
    for (const path of this.pack.paths()) {
      const st = statSync(path, { throwIfNoEntry: false });
      // The inode alone could name another file: ext4 reuses a freed one for the next it creates.
      if (st) state[`pack:${path}:${st.ino}:${st.birthtimeMs}`] = st.size;
    }
    return state;
  }

  /**
   * What a stamp watches to notice that an answer among these keys may have gone: the loose
   * folders that hold any of them, and the packs.
   */
  witnesses(keys: string[]): string[] {
    const shards = new Set<string>();
    for (const k of keys) shards.add(k.slice(0, 2));
    const folders = [...shards]
      .sort()
      .map((shard) => join(this.objects, shard))
      .filter((f) => existsSync(f));
    return [...folders, ...this.pack.paths()];
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

  private writeMemo(memo: string, now: Record<string, number>): void {
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
    const probe = join(this.dir, PACKS, `.probe-${process.pid}`);
    try {
      await makeDirs(join(this.dir, PACKS));
      await writeFile(probe, "");
      await rm(probe, { force: true });
      // The folder may be writable and the pack not (another user's file in a shared cache).
      this.pack.checkWritable();
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
    // No fsync: a reader validates entries, so even a power loss can only cost a re-request,
    // never a wrong answer.
    if (this.project !== undefined && entry.project === undefined) entry = { ...entry, project: this.project };
    const existing = this.looseWinner(entry.key);
    if (existing) return existing;
    const bytes = entryBytes(entry);
    const stored = await this.append(entry.key, bytes);
    return stored === bytes ? entry : (parseEntry(stored.toString("utf8"), entry.key) ?? entry);
  }

  /** A sound loose entry of this key (an older version's, stored before any pack record). */
  private looseWinner(key: string): CacheEntry | undefined {
    if (!this.hasLoose(key)) return undefined;
    const text = this.readLoose(key);
    return text === undefined ? undefined : parseEntry(text, key);
  }

  private async append(key: string, bytes: Buffer): Promise<Buffer> {
    try {
      const winner = await this.pack.append(key, bytes);
      return winner.equals(bytes) ? bytes : winner;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code)
        throw new CacheWriteError(
          `cannot write to the cache ${this.dir} (${code}: ${(err as Error).message.split(",")[0]})`,
          "free space or fix the folder, then build again: answers already stored are kept",
        );
      throw err;
    }
  }

  private readonly shards = new Set<string>();

  /** An entry's stored bytes (what a remote holds): its first sound copy, or undefined if absent. */
  async readRaw(key: string): Promise<Uint8Array | undefined> {
    if (this.hasLoose(key)) {
      try {
        const bytes = await readFile(this.pathOf(key));
        if (parseEntry(bytes.toString("utf8"), key)) return bytes;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
    }
    for (const record of this.pack.candidates(key)) if (parseEntry(record.toString("utf8"), key)) return record;
    return undefined;
  }

  /**
   * Store bytes fetched from elsewhere (a remote) as an entry, as put() does (a sound entry
   * already stored is kept). The caller validates them first: this stores what it is given.
   */
  async putRaw(key: string, bytes: Uint8Array): Promise<void> {
    if (this.looseWinner(key)) return;
    if (packable(bytes)) {
      await this.append(key, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
      return;
    }
    await this.putLoose(key, bytes);
  }

  /** A loose file, for an entry a pack cannot hold (a format-1 entry from a remote). */
  private async putLoose(key: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(key);
    const shard = dirname(path);
    if (!this.shards.has(shard)) {
      await makeDirs(shard);
      this.shards.add(shard);
    }
    this.looseFolder = true;
    const tmp = `${path}.tmp-${process.pid}-${(tempSeq++).toString(36)}`;
    try {
      await writeTemp(tmp, bytes);
      // First writer wins here too: a sound entry already stored is kept.
      try {
        await link(tmp, path);
      } catch (err) {
        if (!LINK_REFUSED.has((err as NodeJS.ErrnoException).code ?? "")) throw err;
        const text = this.readLoose(key);
        if (text === undefined || !parseEntry(text, key)) await rename(tmp, path);
      }
    } finally {
      await rm(tmp, { force: true }).catch(() => {});
    }
    this.looseKeys?.add(key);
  }

  private async deleteLoose(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
    this.looseKeys?.delete(key);
  }

  /**
   * Remove a key's corrupt copies (`verify`): its loose file, and its packed records that are not
   * sound (voided in place; `gc` leaves them out of the pack it writes).
   */
  async delete(key: string): Promise<void> {
    await this.deleteLoose(key);
    this.voidPacked(key);
  }

  /**
   * A voided record leaves the pack as long as it was, which a completeness memo takes for "no
   * answer removed": the memos go too (each is only a shortcut).
   */
  private voidPacked(key: string): void {
    if (this.pack.voidCorrupt(key) > 0) rmSync(join(this.dir, "state", "complete"), { recursive: true, force: true });
  }

  /** Bytes the key's copies take (loose file and packed records). */
  async sizeOf(key: string): Promise<number> {
    const loose = (await stat(this.pathOf(key)).catch(() => undefined))?.size ?? 0;
    return loose + this.pack.sizeOf(key);
  }

  /** Every stored key (loose or packed), plus stray temp files left by killed writers. */
  async list(): Promise<{ keys: string[]; strays: string[] }> {
    const keys = new Set<string>();
    const strays: string[] = [];
    let shards: string[] = [];
    try {
      shards = await readdir(this.objects);
    } catch {
      // no loose entries
    }
    for (const shard of shards.sort()) {
      if (shard.startsWith(".probe-")) continue;
      for (const f of (await readdir(join(this.objects, shard))).sort()) {
        if (f.endsWith(".json")) keys.add(f.slice(0, -5));
        else if (f.includes(".tmp-")) strays.push(join(this.objects, shard, f));
      }
    }
    for (const f of (await readdir(join(this.dir, PACKS)).catch(() => [] as string[])).sort()) {
      if (f.includes(".tmp-") || f.startsWith(".probe-")) strays.push(join(this.dir, PACKS, f));
    }
    for (const k of this.pack.keys()) keys.add(k);
    return { keys: [...keys].sort(), strays };
  }

  /**
   * Remove these keys' answers (`gc`, which holds the cache alone): loose files are deleted, and
   * the pack is written again without them (and without corrupt or duplicate records). Returns
   * the bytes freed by the pack's rewrite.
   */
  async remove(keys: Set<string>): Promise<number> {
    for (const key of keys) await this.deleteLoose(key);
    return this.pack.rewrite((key) => !keys.has(key));
  }

  /** Close the pack's files (a Cache is usable again afterwards: they reopen when needed). */
  close(): void {
    this.pack.close();
  }
}
