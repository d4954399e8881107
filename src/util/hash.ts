import xxhash from "xxhash-wasm";
import { canonicalJson } from "./canonical-json.js";

type Hasher = Awaited<ReturnType<typeof xxhash>>;
let hasher: Hasher | undefined;

/** xxhash-wasm needs one async initialisation; every entry point awaits this before hashing. */
export async function initHashing(): Promise<void> {
  hasher ??= await xxhash();
}

function h(): Hasher {
  if (!hasher) throw new Error("initHashing() must be awaited before hashing");
  return hasher;
}

/** 64-bit xxhash of a string, as 16 hex digits. */
export function hash64(text: string): string {
  return h().h64ToString(text);
}

/**
 * 128 bits as 32 hex digits: two independently seeded 64-bit hashes. Cache keys use this so that
 * collisions stay negligible across millions of shared entries.
 */
export function hash128(text: string): string {
  const [a, b] = hash128Raw(text);
  return a.toString(16).padStart(16, "0") + b.toString(16).padStart(16, "0");
}

const SEED2 = 0x9e3779b97f4a7c15n;
const encoder = new TextEncoder();
/** Where a text is encoded once for the two hashes of hash128Raw (grown as needed). */
let scratch = new Uint8Array(1024);

/** hash128 as its two 64-bit halves, the text encoded once: for callers that format the digest themselves. */
export function hash128Raw(text: string): [bigint, bigint] {
  const x = h();
  if (scratch.length < text.length * 3) scratch = new Uint8Array(text.length * 3);
  const bytes = scratch.subarray(0, encoder.encodeInto(text, scratch).written);
  return [x.h64Raw(bytes, 0n), x.h64Raw(bytes, SEED2)];
}

/** hash128 of bytes already encoded (UTF-8): the digest hash128 gives of their text. */
export function hash128Bytes(bytes: Uint8Array): string {
  const x = h();
  return x.h64Raw(bytes, 0n).toString(16).padStart(16, "0") + x.h64Raw(bytes, SEED2).toString(16).padStart(16, "0");
}

/** hash64 of bytes already encoded (UTF-8): the digest hash64 gives of their text. */
export function hash64Bytes(bytes: Uint8Array): string {
  return h().h64Raw(bytes).toString(16).padStart(16, "0");
}

export function hashValue(value: unknown): string {
  return hash128(canonicalJson(value));
}

/** A number in [0, 1) derived from a string; the basis of every seeded decision. */
export function unitInterval(text: string): number {
  const hex = h().h64ToString(text);
  // 53 bits is all a double can hold exactly.
  return Number(BigInt("0x" + hex) >> 11n) / 2 ** 53;
}

/**
 * Streaming form of hash128, for files too large to hold as one string: the same digest as
 * hash128 of the whole text, fed in chunks (strings are hashed as UTF-8, as hash128 does).
 */
export function createHash128(): { update(chunk: string | Uint8Array): void; digest(): string } {
  const x = h();
  const a = x.create64(0n);
  const b = x.create64(SEED2);
  return {
    update(chunk) {
      // A text is encoded once for both halves (each update of a text would encode it again).
      const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
      a.update(bytes);
      b.update(bytes);
    },
    digest: () => a.digest().toString(16).padStart(16, "0") + b.digest().toString(16).padStart(16, "0"),
  };
}

/** Streaming form of hash64: the same digest as hash64 of the whole text, fed in chunks (as UTF-8). */
export function createHash64(): { update(chunk: string | Uint8Array): void; digest(): string } {
  const a = h().create64(0n);
  return {
    update(chunk) {
      a.update(chunk);
    },
    digest: () => a.digest().toString(16).padStart(16, "0"),
  };
}

/** 32-bit xxhash of a string (MinHash shingles). */
export function hash32(text: string): number {
  return h().h32(text);
}
