import { type FileHandle, open } from "node:fs/promises";
import { basename } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { UsageError } from "../errors.js";
import { canonicalJson } from "../util/canonical-json.js";
import { createHash64 } from "../util/hash.js";

export const LOCK_FORMAT = 1;

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
}

export interface LockSample {
  id: string;
  /** Dimension name → value key. */
  values: Record<string, string>;
  /**
   * Hash of the texts of glob values, whose key is their file path: an edited file changes no
   * sample id, yet changes what an output that prints it writes.
   */
  texts?: string;
  repeat: number;
  status: "kept" | "dropped" | "failed" | "pending";
  /** Dropped or failed: by which step and why. */
  reason?: { step: string; why: string };
  split?: string;
  steps: Record<string, LockStep>;
}

export interface LockOutput {
  path: string;
  rows: number;
  hash: string;
  /** Hash of the output's definition (format, templates, split, seed). */
  def: string;
}

export interface LockHeader {
  lockfile: typeof LOCK_FORMAT;
  name: string;
  samples: number;
  kept: number;
  dropped: number;
  failed: number;
  pending: number;
  /** Built with --offline (the echo provider): verify and --frozen must check it the same way. */
  offline?: true;
  /** Each step's definition hash (template, model, params...), once: what `plan --explain` compares. */
  steps: Record<string, string>;
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
  const lines = [canonicalJson(lock.header)];
  for (const o of [...lock.outputs].sort((a, b) => cmp(a.path, b.path))) lines.push(canonicalJson({ output: o.path, rows: o.rows, hash: o.hash, def: o.def }));
  for (const s of [...lock.samples].sort((a, b) => cmp(a.id, b.id))) lines.push(canonicalJson(s));
  return lines.join("\n") + "\n";
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
      this.header = all[i++] as unknown as LockHeader;
      if (this.header?.lockfile !== LOCK_FORMAT) throw new Error(`unsupported lock format ${String(this.header?.lockfile)}`);
    }
    for (; i < all.length; i++) {
      const obj = all[i]!;
      if (typeof obj.output === "string") this.outputs.push({ path: obj.output, rows: obj.rows as number, hash: obj.hash as string, def: obj.def as string });
      else this.samples.push(obj as unknown as LockSample);
    }
  }
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
    throw new UsageError(
      `${basename(path)} cannot be read: ${(err as Error).message}`,
      "a merge conflict? resolve it (or delete the lock and run `synthbuild build` to write it anew)",
    );
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
