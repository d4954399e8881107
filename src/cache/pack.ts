import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, renameSync, unlinkSync, write as writeCallback, writeSync } from "node:fs";
import { join } from "node:path";
import { hash128Bytes } from "../util/hash.js";
import { makeDirsSync } from "../util/make-dirs.js";

/**
 * Answers appended to one file, not one file each: creating a file costs the filesystem an inode
 * and directory entries (with a temp name and a link, four metadata operations an answer), which
 * was most of a cold build's CPU past the SDK's own (0.3 ms of 0.8 a request on ext4). An append
 * costs a write, shared by every answer that arrived in the same turn of the event loop.
 *
 * `packs/NNNNNN.pack` holds entries exactly as a loose file holds one (the JSON line, then its
 * checksum line), one after another. Every writer appends to the newest pack with O_APPEND, so on
 * a local filesystem each write lands whole after all earlier ones and the file's order is one
 * order for every process: the first sound record of a key is its answer. A writer reads the
 * pack back after its write and adopts an earlier record of its key, which keeps "first writer
 * wins" across builds sharing the folder. Only `gc`, which runs alone, writes a new pack (the
 * kept records) and removes the old ones.
 *
 * A record is found by its first line's opening, `{"format":2,"key":"` (the entry's own JSON
 * never holds that text unescaped), and must be followed by a checksum line: a record cut short
 * by a killed writer is skipped, and the next one is still found after it.
 */

export const PACKS = "packs";
const PACK_NAME = /^(\d{6})\.pack$/;
const RECORD_START = Buffer.from('{"format":2,"key":"', "latin1");
/** `"xxh128:`, 32 hex digits and `"`. */
const SUM_LINE = 41;
const SUM_START = Buffer.from('"xxh128:', "latin1");
const QUOTE = 0x22;
/** Written over a voided record's first byte. */
const VOID = Buffer.from("#", "latin1");
const NEWLINE = 0x0a;
const READ_CHUNK = 8 << 20;
/** What one read of a record brings in for the records after it (see bytesOf). */
const WINDOW = 256 << 10;
/** How far past the last record read the next may start and still be read "in order" (a record or two skipped). */
const GAP = 8 << 10;
const APPEND_EXISTING = constants.O_WRONLY | constants.O_APPEND;

/** Can these bytes be a pack record? (Format-1 entries, or JSON with its fields in another order, stay loose.) */
export function packable(bytes: Uint8Array): boolean {
  return bytes.length > RECORD_START.length && Buffer.from(bytes.buffer, bytes.byteOffset, RECORD_START.length).equals(RECORD_START);
}

interface PackFile {
  path: string;
  fd: number;
  /** Bytes read and indexed so far: everything before is records or skipped garbage. */
  scanned: number;
}

interface Pending {
  key: string;
  bytes: Buffer;
  /** Set while reading back: these bytes are the key's first record (no read needed to tell). */
  first?: boolean;
  /** How many times the write went to a pack a gc had just removed. */
  rewritten?: number;
  resolve: (winner: Buffer) => void;
  reject: (err: unknown) => void;
}

/** Closes the files of a Pack nobody closed once it is collected (a long-lived process makes many). */
const orphans = new FinalizationRegistry<Set<number>>((fds) => {
  for (const fd of fds) {
    try {
      closeSync(fd);
    } catch {
      // already closed
    }
  }
});

function missing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === "ENOENT";
}

export class Pack {
  readonly dir: string;
  /** Every descriptor this pack holds open (closed by close(), or by `orphans`). */
  private readonly fds = new Set<number>();
  /** The descriptor a write is in flight on: closing it then would hand its number to another file. */
  private writingFd?: number;
  /** A descriptor set aside by a reset while its write was in flight: closed when the write ends. */
  private retired?: number;
  private files: PackFile[] = [];
  /** The bytes last read for a record, from `start`; records ending by `end` are served from them (see bytesOf). */
  private window?: { fd: number; start: number; end: number; bytes: Buffer };
  /** Where the last record read from a file ended: the next one starting there is a read in order. */
  private lastRead?: { fd: number; end: number };
  private loaded = false;
  private appendFd?: number;
  /** key → its first record; later records of the same key (a race lost, or a corrupt first) in `more`. */
  private readonly first = new Map<string, number>();
  private readonly more = new Map<string, number[]>();
  private recFile = new Uint16Array(1024);
  private recOffset = new Float64Array(1024);
  private recLength = new Uint32Array(1024);
  private records = 0;
  private queue: Pending[] = [];
  private flushing = false;
  /** The records just written, by key, while the pack is read back after the write. */
  private expecting?: Map<string, Pending>;

  constructor(
    cacheDir: string,
    /** Whether a record's bytes are a sound entry of this key (the store's parse and checksum). */
    private readonly sound: (key: string, record: Buffer) => boolean,
  ) {
    this.dir = join(cacheDir, PACKS);
    orphans.register(this, this.fds);
  }

  private open(path: string, flags: string | number): number {
    const fd = openSync(path, flags);
    this.fds.add(fd);
    return fd;
  }

  private close1(fd: number): void {
    if (fd === this.writingFd) {
      this.retired = fd;
      return;
    }
    this.fds.delete(fd);
    closeSync(fd);
  }

  /** The pack files there now, oldest first. Only "no folder" means none: any other failure is the caller's to see. */
  private listed(): string[] {
    try {
      return readdirSync(this.dir)
        .filter((n) => PACK_NAME.test(n))
        .sort();
    } catch (err) {
      if (missing(err)) return [];
      throw err;
    }
  }

  /** Read every pack once; later calls only read what was appended since. */
  private load(): void {
    if (this.loaded) {
      this.catchUp();
      return;
    }
    this.loaded = true;
    try {
      for (const name of this.listed()) {
        const path = join(this.dir, name);
        let fd: number;
        try {
          fd = this.open(path, "r");
        } catch (err) {
          if (missing(err)) continue; // removed by a gc since the listing
          throw err;
        }
        this.files.push({ path, fd, scanned: 0 });
        this.scan(this.files.length - 1);
      }
    } catch (err) {
      // Unreadable is not empty: a build that took it for empty would pay for every answer again.
      this.reset();
      throw err;
    }
  }

  /**
   * Index what other writers (and this one) appended to the newest pack since the last look. A
   * pack unlinked meanwhile (a gc in another process) means every pack is read again.
   */
  private catchUp(): void {
    const last = this.files.length - 1;
    if (last < 0 || fstatSync(this.files[last]!.fd).nlink === 0) {
      this.reset();
      this.load();
    } else this.scan(last);
  }

  private reset(): void {
    // Descriptors are numbers the next open may reuse for another file.
    this.window = undefined;
    this.lastRead = undefined;
    for (const f of this.files) this.close1(f.fd);
    if (this.appendFd !== undefined) this.close1(this.appendFd);
    this.appendFd = undefined;
    this.files = [];
    this.first.clear();
    this.more.clear();
    this.records = 0;
    this.loaded = false;
  }

  private scan(file: number): void {
    const f = this.files[file]!;
    const size = fstatSync(f.fd).size;
    let carry: Buffer | undefined;
    while (f.scanned + (carry?.length ?? 0) < size) {
      const want = Math.min(READ_CHUNK, size - f.scanned - (carry?.length ?? 0));
      const chunk = Buffer.allocUnsafe(want);
      const n = readSync(f.fd, chunk, 0, want, f.scanned + (carry?.length ?? 0));
      if (n === 0) break;
      const buf = carry ? Buffer.concat([carry, chunk.subarray(0, n)]) : chunk.subarray(0, n);
      const used = this.index(file, buf, f.scanned);
      f.scanned += used;
      carry = used < buf.length ? buf.subarray(used) : undefined;
    }
  }

  /** Index the whole records in `buf` (which starts at `base` in the file); returns the bytes consumed. */
  private index(file: number, buf: Buffer, base: number): number {
    let pos = 0;
    for (;;) {
      const nl = buf.indexOf(NEWLINE, pos);
      if (nl < 0) return pos;
      const firstStart = buf.indexOf(RECORD_START, pos);
      if (firstStart < 0 || firstStart > nl - RECORD_START.length) {
        pos = nl + 1;
        continue;
      }
      const end = buf.indexOf(NEWLINE, nl + 1);
      if (end < 0) return pos;
      if (end - nl - 1 !== SUM_LINE || buf.compare(SUM_START, 0, SUM_START.length, nl + 1, nl + 1 + SUM_START.length) !== 0) {
        // Not a record's checksum line: perhaps the start of the next record.
        pos = nl + 1;
        continue;
      }
      const start = this.recordStart(buf, firstStart, nl);
      if (start < 0) {
        pos = end + 1;
        continue;
      }
      const keyStart = start + RECORD_START.length;
      const keyEnd = buf.indexOf(QUOTE, keyStart);
      if (keyEnd > keyStart && keyEnd < nl) this.add(buf.toString("latin1", keyStart, keyEnd), file, base + start, end + 1 - start, buf, start);
      pos = end + 1;
    }
  }

  /**
   * Where the record ending at `nl` starts. Usually its line holds the opening text once, at the
   * start. It holds it more than once when bytes of a record cut short come first, or when the
   * entry nests an object that opens the same way (`extra_body: { format: 2, key: … }`): then the
   * record is the one whose JSON the checksum line after it names. -1 when none is.
   */
  private recordStart(buf: Buffer, first: number, nl: number): number {
    const second = buf.indexOf(RECORD_START, first + 1);
    if (second < 0 || second > nl - RECORD_START.length) return first;
    const sum = buf.toString("latin1", nl + 1 + SUM_START.length, nl + SUM_LINE);
    for (let at = first; at >= 0 && at <= nl - RECORD_START.length; at = buf.indexOf(RECORD_START, at + 1)) {
      if (hash128Bytes(buf.subarray(at, nl)) === sum) return at;
    }
    return -1;
  }

  /** `buf` and `start`: where the record's bytes are in what was just read. */
  private add(key: string, file: number, offset: number, length: number, buf: Buffer, start: number): void {
    if (this.records === this.recOffset.length) {
      const grow = <T extends Uint16Array | Float64Array | Uint32Array>(a: T): T => {
        const b = new (a.constructor as new (n: number) => T)(a.length * 2);
        b.set(a);
        return b;
      };
      this.recFile = grow(this.recFile);
      this.recOffset = grow(this.recOffset);
      this.recLength = grow(this.recLength);
    }
    const id = this.records++;
    this.recFile[id] = file;
    this.recOffset[id] = offset;
    this.recLength[id] = length;
    if (!this.first.has(key)) {
      this.first.set(key, id);
      const mine = this.expecting?.get(key);
      if (mine && mine.bytes.length === length && buf.compare(mine.bytes, 0, length, start, start + length) === 0) mine.first = true;
    } else {
      const m = this.more.get(key);
      if (m) m.push(id);
      else this.more.set(key, [id]);
    }
  }

  /**
   * A record's bytes. A build often reads records in the order they were stored (answers arrive
   * in about sample order): once two reads follow each other in a file, one read of WINDOW bytes
   * serves the records after them too, where a read each cost a system call (about 10 µs here,
   * 0.2 s of an edited build of 20,000 samples). Reads in any other order (`verify`, `--frozen`
   * and a lock's order, two steps' answers stored apart) read only their record, as before: a
   * window each would bring in a hundred times what they serve. Only records indexed before the
   * window was read are served from it: those were whole then, and a record never changes once
   * whole but for a void (which drops the window); one being appended meanwhile may be torn in it.
   * `direct`: read from the file whatever the window holds.
   */
  private bytesOf(id: number, direct = false): Buffer {
    const f = this.files[this.recFile[id]!]!;
    const len = this.recLength[id]!;
    const at = this.recOffset[id]!;
    const w = this.window;
    if (!direct && w?.fd === f.fd && at >= w.start && at + len <= w.end) return Buffer.from(w.bytes.subarray(at - w.start, at - w.start + len));
    const follows = this.lastRead?.fd === f.fd && at >= this.lastRead.end && at - this.lastRead.end <= GAP;
    this.lastRead = { fd: f.fd, end: at + len };
    if (direct || !follows || len >= WINDOW) {
      const buf = Buffer.allocUnsafe(len);
      const n = readSync(f.fd, buf, 0, len, at);
      return n === len ? buf : buf.subarray(0, n);
    }
    const bytes = Buffer.allocUnsafe(WINDOW);
    const n = readSync(f.fd, bytes, 0, WINDOW, at);
    this.window = { fd: f.fd, start: at, end: Math.min(at + n, f.scanned), bytes };
    return Buffer.from(bytes.subarray(0, Math.min(n, len)));
  }

  /** The records of a key, in the packs' order (usually one). */
  private idsOf(key: string): number[] {
    const id = this.first.get(key);
    if (id === undefined) return [];
    const more = this.more.get(key);
    return more ? [id, ...more] : [id];
  }

  has(key: string, fresh = false): boolean {
    if (fresh || !this.loaded) this.load();
    return this.first.has(key);
  }

  /** The records of a key, oldest first, for the caller to take the first sound one. */
  *candidates(key: string, fresh = false): Generator<Buffer> {
    if (fresh || !this.loaded) this.load();
    for (const id of this.idsOf(key)) yield this.bytesOf(id);
  }

  /** Every key with a record (sound or not), in the order first stored. */
  keys(): string[] {
    this.load();
    return [...this.first.keys()];
  }

  /** The pack files there now (listed, not read: a no-op build's check must not index them). */
  paths(): string[] {
    return this.listed().map((n) => join(this.dir, n));
  }

  /** Bytes of a key's records. */
  sizeOf(key: string): number {
    let n = 0;
    for (const id of this.idsOf(key)) n += this.recLength[id]!;
    return n;
  }

  /**
   * Append a record; resolves with the key's first sound record once the write is in the file
   * (these bytes, or an earlier writer's that `sound` accepts).
   */
  append(key: string, bytes: Buffer): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      this.queue.push({ key, bytes, resolve, reject });
      if (!this.flushing) {
        this.flushing = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * The descriptor to append with: to the newest pack there is now. Looked up again before the
   * first append and whenever the pack was removed (a gc replaced it), so a writer never appends
   * to a removed file, nor starts a pack that sorts before the newest.
   */
  private writeFd(): number {
    if (this.appendFd !== undefined && fstatSync(this.appendFd).nlink > 0) return this.appendFd;
    for (let attempt = 0; ; attempt++) {
      const names = this.listed();
      const newest = names.length ? join(this.dir, names[names.length - 1]!) : undefined;
      if (!this.loaded || this.files[this.files.length - 1]?.path !== newest || (this.appendFd !== undefined && newest !== undefined)) {
        this.reset();
        this.load();
      }
      try {
        if (newest !== undefined) {
          // Not "a": that would create the file again if a gc removed it since the listing.
          this.appendFd = this.open(newest, APPEND_EXISTING);
        } else {
          makeDirsSync(this.dir);
          // Exclusive: two writers starting the first pack at once must both write to one file.
          const path = join(this.dir, "000001.pack");
          this.appendFd = this.open(path, "ax");
          this.files.push({ path, fd: this.open(path, "r"), scanned: 0 });
        }
        return this.appendFd;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code !== "EEXIST" && code !== "ENOENT") || attempt >= 5) throw err;
        // Another writer started the pack, or a gc replaced it, since the listing: look again.
        this.appendFd = undefined;
        this.reset();
      }
    }
  }

  /** Can an answer be appended here? Opens (or starts) the pack as the first append would. */
  checkWritable(): void {
    this.writeFd();
  }

  /** Writes every record queued so far in one append, then settles each with its key's winner. */
  private flush(): void {
    const batch = this.queue;
    this.queue = [];
    const fail = (err: unknown) => {
      for (const p of batch) p.reject(err);
    };
    const next = () => {
      if (this.queue.length) setImmediate(() => this.flush());
      else this.flushing = false;
    };
    let fd: number;
    try {
      fd = this.writeFd();
    } catch (err) {
      fail(err);
      next();
      return;
    }
    const buf = batch.length === 1 ? batch[0]!.bytes : Buffer.concat(batch.map((p) => p.bytes));
    this.writingFd = fd;
    writeCallback(fd, buf, 0, buf.length, null, (err, written) => {
      this.writingFd = undefined;
      // Asked of this descriptor before a reset that set it aside during the write closes it.
      const removed = !err && fstatSync(fd).nlink === 0;
      if (this.retired === fd) {
        this.retired = undefined;
        this.fds.delete(fd);
        closeSync(fd);
      }
      try {
        if (err) throw err;
        if (written !== buf.length) throw Object.assign(new Error(`short write to ${this.dir} (${written} of ${buf.length} bytes)`), { code: "ENOSPC" });
        if (removed && (batch[0]!.rewritten ?? 0) < 5) {
          // The pack was replaced (a gc) around the write: write the batch again, to the new one.
          for (const p of batch) p.rewritten = (p.rewritten ?? 0) + 1;
          this.queue.unshift(...batch);
          next();
          return;
        }
        this.expecting = new Map();
        for (const p of batch) if (!this.expecting.has(p.key)) this.expecting.set(p.key, p);
        try {
          this.catchUp();
        } finally {
          this.expecting = undefined;
        }
        for (const p of batch) p.resolve(p.first ? p.bytes : this.winner(p));
      } catch (e) {
        fail(e);
      }
      next();
    });
  }

  private winner(p: Pending): Buffer {
    for (const id of this.idsOf(p.key)) {
      const b = this.bytesOf(id);
      if (b.equals(p.bytes) || this.sound(p.key, b)) return b;
    }
    throw new Error(`a record of ${p.key} written to ${this.dir} was not found when read back`);
  }

  /**
   * Keep the first sound record of each key `keep` accepts: written to a new pack, which
   * then replaces the old ones. Only while nothing else writes (gc holds the cache alone).
   * Returns the bytes the old packs held beyond what the new one does.
   */
  rewrite(keep: (key: string) => boolean): number {
    this.load();
    if (this.files.length === 0) return 0;
    let before = 0;
    for (const f of this.files) before += fstatSync(f.fd).size;
    let recorded = 0;
    for (let id = 0; id < this.records; id++) recorded += this.recLength[id]!;
    // Nothing to leave out (one pack, only records, one per key, all kept and sound): no rewrite.
    if (
      this.files.length === 1 &&
      recorded === before &&
      this.more.size === 0 &&
      [...this.first].every(([k, id]) => keep(k) && this.sound(k, this.bytesOf(id)))
    )
      return 0;
    const last = PACK_NAME.exec(this.files[this.files.length - 1]!.path.split("/").pop()!)![1]!;
    const name = `${String(Number(last) + 1).padStart(6, "0")}.pack`;
    const target = join(this.dir, name);
    const tmp = `${target}.tmp-${process.pid}`;
    const out = openSync(tmp, "wx");
    let after = 0;
    let seen = this.records;
    try {
      const pending: Buffer[] = [];
      let pendingBytes = 0;
      const drain = () => {
        if (!pendingBytes) return;
        const b = Buffer.concat(pending);
        let at = 0;
        while (at < b.length) at += writeSync(out, b, at);
        after += b.length;
        pending.length = 0;
        pendingBytes = 0;
      };
      for (const key of this.first.keys()) {
        for (const id of this.idsOf(key)) {
          const b = this.bytesOf(id);
          if (!this.sound(key, b)) continue;
          if (keep(key)) {
            pending.push(b);
            pendingBytes += b.length;
            if (pendingBytes > READ_CHUNK) drain();
          }
          break;
        }
      }
      drain();
      // A writer that gc did not wait for (gc waits for every command that stores answers) may
      // have appended to the old pack since it was read: carried over in its order, before the
      // new pack is where writers go.
      seen = this.carryOver(out, seen);
    } finally {
      closeSync(out);
    }
    const old = this.files.map((f) => f.path);
    renameSync(tmp, target);
    for (const path of old) unlinkSync(path);
    // What landed between that look and the unlink; a write after the unlink finds its file
    // removed and is written again to the new pack.
    const late = openSync(target, APPEND_EXISTING);
    try {
      this.carryOver(late, seen);
    } finally {
      closeSync(late);
    }
    this.reset();
    return before - after;
  }

  /** Append to `out` the records appended to the packs since record `from` was indexed; returns the count now. */
  private carryOver(out: number, from: number): number {
    for (let f = 0; f < this.files.length; f++) this.scan(f);
    for (let id = from; id < this.records; id++) {
      const b = this.bytesOf(id);
      let at = 0;
      while (at < b.length) at += writeSync(out, b, at);
    }
    return this.records;
  }

  /**
   * Void a key's records that are not sound: the first byte of each is overwritten, so no reader
   * finds it again (a corrupt record would otherwise pass every presence check). Returns how many.
   */
  voidCorrupt(key: string): number {
    if (!this.loaded) this.load();
    const ids = this.idsOf(key);
    // As the file has them: nothing is voided for bytes only the window held.
    const bad = ids.filter((id) => !this.sound(key, this.bytesOf(id, true)));
    if (!bad.length) return 0;
    this.window = undefined;
    for (const id of bad) {
      let fd: number;
      try {
        fd = openSync(this.files[this.recFile[id]!]!.path, "r+");
      } catch (err) {
        // A cache that may only be read keeps its corrupt record; it is still never served.
        if (["EROFS", "EACCES", "EPERM", "ENOENT"].includes((err as NodeJS.ErrnoException).code ?? "")) return 0;
        throw err;
      }
      try {
        // Only into the file the record was read from: another pack may have taken its name since.
        const read = fstatSync(this.files[this.recFile[id]!]!.fd);
        const now = fstatSync(fd);
        if (now.ino !== read.ino || now.dev !== read.dev || now.birthtimeMs !== read.birthtimeMs) return 0;
        writeSync(fd, VOID, 0, 1, this.recOffset[id]!);
      } finally {
        closeSync(fd);
      }
    }
    const left = ids.filter((id) => !bad.includes(id));
    if (left.length) this.first.set(key, left[0]!);
    else this.first.delete(key);
    if (left.length > 1) this.more.set(key, left.slice(1));
    else this.more.delete(key);
    return bad.length;
  }

  close(): void {
    this.reset();
  }
}
