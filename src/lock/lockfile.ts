import { type FileHandle, open } from "node:fs/promises";
import { basename } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { UsageError } from "../errors.js";
import { canonicalJson } from "../util/canonical-json.js";
import { AtomicFileWriter } from "../util/fs-atomic.js";
import { createHash64 } from "../util/hash.js";

/**
 * 1: steps as definition hashes only.
 * 2: the header records the seed, combine, the tool's key and rendering versions and each step's
 *    definition in parts (template hash, model, endpoint, params, a filter's options...), so that
 *    `plan --explain` and `diff` can say what changed, and which endpoint answered.
 */
export const LOCK_FORMAT = 2;

export interface LockStep {
  /** Cache key of the request (generate steps). */
  key?: string;
  /** Hash of the step's output text. */
  out?: string;
  /** The step's recipe: when it still matches, so do the request and answer above. */
  r: string;
  /** The model that actually answered, and its fingerprint. */
  model?: string;
  fp?: string;
  finish?: string;
  usage?: [number, number];
  /**
   * The Batch API batch that answered (absent for a direct request). Optional, so format 2 still
   * holds: older locks read as they are, and no other line changes.
   */
  batch?: string;
}

export interface LockSample {
  id: string;
  /** Dimension name → value key. */
  values: Record<string, string>;
  /**
   * Hash of the texts of glob values, whose key is their file path, and of rows keyed by a column:
   * an edited file or row changes no sample id, yet changes what an output that prints it writes.
   */
  texts?: string;
  repeat: number;
  status: "kept" | "dropped" | "failed" | "pending";
  /** Dropped or failed: by which step and why. */
  reason?: { step: string; why: string };
  split?: string;
  /**
   * `synthbuild reroll`: generate step id → attempt (≥ 1), absent when never rerolled. Optional, so
   * format 2 still holds: older locks read as they are, and lines of samples never rerolled are
   * byte for byte what they were. The lock is where it lives because it is what is committed: the
   * manifest says what the dataset is, the lock which draw of it was released.
   */
  attempts?: Record<string, number>;
  steps: Record<string, LockStep>;
}

export interface LockOutput {
  path: string;
  rows: number;
  hash: string;
  /** Hash of the output's definition (format, templates, split, seed). */
  def: string;
}

/** A step's definition as the lock records it: its hash, and the parts it was made of. */
export interface LockStepDef {
  def: string;
  kind: string;
  [part: string]: unknown;
}

export interface LockHeader {
  lockfile: typeof LOCK_FORMAT;
  name: string;
  seed: number;
  combine: { mode: string; n?: number; repeat: number };
  /** `target:` as built; `samples` is then the number of candidates used, which a rebuild expands again. */
  target?: { rows: number; max_candidates: number };
  /** The tool's cache-key and rendering versions the lock was built with. */
  versions: { key: number; render: number };
  samples: number;
  kept: number;
  dropped: number;
  failed: number;
  pending: number;
  /** Built with --offline (the echo provider): verify and --frozen must check it the same way. */
  offline?: true;
  /** Each step's definition, once: what `plan --explain` and `diff` compare. */
  steps: Record<string, LockStepDef>;
}

export interface Lock {
  header: LockHeader;
  outputs: LockOutput[];
  samples: LockSample[];
}

/**
 * One JSON object a line: the header, then outputs by path, then samples by id. Sorted and
 * canonical, so the same build always writes the same bytes and `git diff` shows exactly the
 * samples that changed. Nothing time-dependent is written, or a no-op rebuild would show a diff.
 */
export function serializeLock(lock: Lock): string {
  return [...lockText(lock)].join("");
}

/** serializeLock's text in pieces of about 1 MB, whole lines each. */
export function* lockText(lock: Lock): Generator<string> {
  let piece = `${canonicalJson(lock.header)}\n`;
  const lines = function* () {
    for (const o of [...lock.outputs].sort((a, b) => cmp(a.path, b.path))) yield canonicalJson({ output: o.path, rows: o.rows, hash: o.hash, def: o.def });
    for (const s of [...lock.samples].sort((a, b) => cmp(a.id, b.id))) yield canonicalJson(s);
  };
  for (const line of lines()) {
    piece += `${line}\n`;
    if (piece.length >= 1 << 20) {
      yield piece;
      piece = "";
    }
  }
  yield piece;
}

/**
 * Write the lock at `path` (atomically) unless its text hashes to `unchanged`; returns the hash.
 * Hashed and written a piece at a time: the lock of 100,000 samples is about 30 MB, and that text
 * whole, its bytes and the hasher's copy of them were a third of a large build's peak memory.
 */
export async function writeLock(path: string, lock: Lock, unchanged?: string): Promise<string> {
  const hash = createHash64();
  const pieces: Buffer[] = [];
  for (const piece of lockText(lock)) {
    // Encoded once, for the hash and the file alike.
    const bytes = Buffer.from(piece, "utf8");
    hash.update(bytes);
    pieces.push(bytes);
  }
  const digest = hash.digest();
  if (digest === unchanged) return digest;
  const out = await AtomicFileWriter.open(path);
  try {
    for (const piece of pieces) await out.write(piece);
    // Inside: a failed fsync leaves no temp file or open handle behind.
    await out.commit();
  } catch (err) {
    await out.abort();
    throw err;
  }
  return digest;
}

/** hash64 of serializeLock's text, without the text whole. */
export function hashLock(lock: Lock): string {
  const hash = createHash64();
  for (const piece of lockText(lock)) hash.update(piece);
  return hash.digest();
}

/** Every cache key a lock names. */
export function lockKeys(lock: Lock): string[] {
  const keys: string[] = [];
  for (const s of lock.samples) for (const id in s.steps) if (s.steps[id]!.key) keys.push(s.steps[id]!.key!);
  return keys;
}

export function parseLock(text: string): Lock {
  const reader = new LockReader();
  reader.add(text);
  return reader.finish();
}

/**
 * Builds a Lock from its text in pieces, so a large lock is never held whole (nor copied) while
 * it is parsed: at 100,000 samples the text is ~30 MB.
 */
class LockReader {
  private header?: LockHeader;
  private readonly outputs: LockOutput[] = [];
  private readonly samples: LockSample[] = [];
  private rest = "";
  private line = 0;

  add(chunk: string): void {
    const text = this.rest + chunk;
    const cut = text.lastIndexOf("\n");
    if (cut === -1) {
      this.rest = text;
      return;
    }
    this.rest = text.slice(cut + 1);
    this.lines(text.slice(0, cut));
  }

  finish(): Lock {
    this.lines(this.rest);
    this.rest = "";
    if (!this.header) throw new Error("empty lock file");
    return { header: this.header, outputs: this.outputs, samples: this.samples };
  }

  private lines(block: string): void {
    block = block.trimEnd();
    if (block === "") return;
    // One JSON.parse of many lines (as an array) is much faster than one per line.
    const all = JSON.parse(`[${block.replaceAll("\n", ",")}]`) as Record<string, unknown>[];
    let i = 0;
    if (!this.header) {
      this.line++;
      this.header = checkHeader(all[i++]);
    }
    for (; i < all.length; i++) {
      const obj = all[i]!;
      this.line++;
      if (obj !== null && typeof obj === "object" && "output" in obj) this.outputs.push(checkOutput(obj, this.line));
      else this.samples.push(checkSample(obj, this.line));
    }
  }
}

/**
 * Lines that parse but are not what this version writes (an edit by hand, a bad merge, another
 * tool's file) are reported with their line, never trusted: every later decision reads these
 * fields as the types below.
 */
class LockShapeError extends Error {}

const isObj = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === "object" && !Array.isArray(v);
const isStr = (v: unknown): v is string => typeof v === "string";
const isCount = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;

function shape(ok: boolean, line: number, what: string): void {
  if (!ok) throw new LockShapeError(`line ${line}: ${what}`);
}

function checkHeader(h: unknown): LockHeader {
  if (isObj(h) && h.lockfile !== LOCK_FORMAT && typeof h.lockfile === "number") {
    throw new LockShapeError(
      h.lockfile < LOCK_FORMAT
        ? `it was written by an older synthbuild (lock format ${h.lockfile}; this one writes ${LOCK_FORMAT})`
        : `it was written by a newer synthbuild (lock format ${h.lockfile})`,
    );
  }
  shape(isObj(h) && h.lockfile === LOCK_FORMAT, 1, "not a synthbuild lock header");
  const x = h as Record<string, unknown>;
  shape(
    isStr(x.name) && typeof x.seed === "number" && isObj(x.combine) && isObj(x.versions) && isObj(x.steps),
    1,
    "the header lacks name, seed, combine, versions or steps",
  );
  for (const k of ["samples", "kept", "dropped", "failed", "pending"]) shape(isCount(x[k]), 1, `the header's ${k} is not a count`);
  for (const [id, d] of Object.entries(x.steps as object)) shape(isObj(d) && isStr(d.def) && isStr(d.kind), 1, `step ${id} has no definition`);
  return x as unknown as LockHeader;
}

function checkOutput(o: Record<string, unknown>, line: number): LockOutput {
  shape(isStr(o.output) && isCount(o.rows) && isStr(o.hash) && isStr(o.def), line, "an output line needs output, rows, hash and def");
  return { path: o.output as string, rows: o.rows as number, hash: o.hash as string, def: o.def as string };
}

const STATUSES = new Set(["kept", "dropped", "failed", "pending"]);

function checkSample(s: unknown, line: number): LockSample {
  shape(isObj(s), line, "not a sample");
  const x = s as Record<string, unknown>;
  shape(
    isStr(x.id) && isObj(x.values) && isCount(x.repeat) && STATUSES.has(x.status as string) && isObj(x.steps),
    line,
    "a sample needs id, values, repeat, status and steps",
  );
  for (const v of Object.values(x.values as object)) shape(isStr(v), line, `sample ${x.id}: a value is not text`);
  shape(x.reason === undefined || (isObj(x.reason) && isStr(x.reason.step) && isStr(x.reason.why)), line, `sample ${x.id}: reason needs step and why`);
  shape(x.texts === undefined || isStr(x.texts), line, `sample ${x.id}: texts is not a hash`);
  shape(x.split === undefined || isStr(x.split), line, `sample ${x.id}: split is not a name`);
  shape(
    x.attempts === undefined || (isObj(x.attempts) && Object.values(x.attempts).every((n) => isCount(n) && n >= 1)),
    line,
    `sample ${x.id}: attempts is not { step: n ≥ 1 }`,
  );
  for (const [id, st] of Object.entries(x.steps as object)) {
    shape(isObj(st) && isStr(st.r), line, `sample ${x.id} step ${id}: no recipe`);
    const e = st as Record<string, unknown>;
    for (const k of ["key", "out", "model", "fp", "finish", "batch"])
      shape(e[k] === undefined || isStr(e[k]), line, `sample ${x.id} step ${id}: ${k} is not text`);
    shape(
      e.usage === undefined || (Array.isArray(e.usage) && e.usage.length === 2 && e.usage.every(isCount)),
      line,
      `sample ${x.id} step ${id}: usage is not [input, output]`,
    );
  }
  return x as unknown as LockSample;
}

/**
 * The lock at `path`, or undefined if there is none, with the hash of its text (hash64, as of
 * serializeLock's output). Read and hashed in 1 MB pieces; the text itself is never kept. A lock
 * that does not parse is an error.
 */
export async function readLock(path: string): Promise<{ lock: Lock; hash: string } | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new UsageError(`cannot read ${basename(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    const reader = new LockReader();
    const hash = createHash64();
    const decoder = new StringDecoder("utf8");
    const buf = Buffer.allocUnsafe(1 << 20);
    for (;;) {
      let bytesRead: number;
      try {
        ({ bytesRead } = await fh.read(buf, 0, buf.length, null));
      } catch (err) {
        throw new UsageError(`cannot read ${basename(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      if (bytesRead === 0) break;
      const bytes = buf.subarray(0, bytesRead);
      hash.update(bytes);
      parsing(path, () => reader.add(decoder.write(bytes)));
    }
    return { lock: parsing(path, () => (reader.add(decoder.end()), reader.finish())), hash: hash.digest() };
  } finally {
    await fh.close();
  }
}

/** A lock whose text does not parse: most likely a merge conflict. */
function parsing<T>(path: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    const version = err instanceof LockShapeError && err.message.startsWith("it was written by");
    throw new UsageError(
      `${basename(path)} cannot be read: ${(err as Error).message}`,
      version
        ? "run `synthbuild build` to write it anew"
        : "a merge conflict or a hand edit? `synthbuild lock` writes it anew from the manifest and the cache, with no request",
    );
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
