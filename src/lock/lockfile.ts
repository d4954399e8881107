import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { UsageError } from "../errors.js";
import { canonicalJson } from "../util/canonical-json.js";
import { hash64 } from "../util/hash.js";

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
  const body = text.trimEnd();
  if (body === "") throw new Error("empty lock file");
  // One JSON.parse of the whole file (as an array) is much faster than one per line.
  const all = JSON.parse(`[${body.replaceAll("\n", ",")}]`) as Record<string, unknown>[];
  const header = all[0] as unknown as LockHeader;
  if (header.lockfile !== LOCK_FORMAT) throw new Error(`unsupported lock format ${String(header.lockfile)}`);
  const outputs: LockOutput[] = [];
  const samples: LockSample[] = [];
  for (let i = 1; i < all.length; i++) {
    const obj = all[i]!;
    if (typeof obj.output === "string") outputs.push({ path: obj.output, rows: obj.rows as number, hash: obj.hash as string, def: obj.def as string });
    else samples.push(obj as unknown as LockSample);
  }
  return { header, outputs, samples };
}

/** The lock at `path`, or undefined if there is none. A lock that does not parse is an error. */
/**
 * The parsed lock and the hash of its text (the text itself is not kept: a 100,000-sample lock
 * is tens of megabytes, and the hash is all that comparisons need).
 */
export async function readLock(path: string): Promise<{ lock: Lock; hash: string } | undefined> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  try {
    return { lock: parseLock(text), hash: hash64(text) };
  } catch (err) {
    throw new UsageError(`${basename(path)} cannot be read: ${(err as Error).message}`, "a merge conflict? resolve it (or delete the lock and run `synthbuild build` to write it anew)");
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
