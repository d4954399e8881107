import { hash32 } from "../util/hash.js";

const PERMUTATIONS = 128;
const BANDS = 32;
const ROWS = PERMUTATIONS / BANDS;

/** Fixed (a, b) pairs of the universal hash family a·x + b mod 2^32 (a odd): one per permutation. */
const A = new Uint32Array(PERMUTATIONS);
const B = new Uint32Array(PERMUTATIONS);
{
  let s = 0x2545f491;
  const next = () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
  for (let i = 0; i < PERMUTATIONS; i++) {
    A[i] = next() | 1;
    B[i] = next();
  }
}

/** The MinHash signature of a text's word n-grams (the whole text, if shorter than n words). */
export function signature(text: string, shingle: number): Uint32Array {
  const words = text.split(" ").filter(Boolean);
  const sig = new Uint32Array(PERMUTATIONS).fill(0xffffffff);
  const grams = Math.max(1, words.length - shingle + 1);
  for (let g = 0; g < grams; g++) {
    const x = hash32(words.slice(g, g + shingle).join(" "));
    for (let i = 0; i < PERMUTATIONS; i++) {
      const h = (Math.imul(A[i]!, x) + B[i]!) >>> 0;
      if (h < sig[i]!) sig[i] = h;
    }
  }
  return sig;
}

function similarity(a: Uint32Array, b: Uint32Array): number {
  let same = 0;
  for (let i = 0; i < PERMUTATIONS; i++) if (a[i] === b[i]) same++;
  return same / PERMUTATIONS;
}

/**
 * Near-duplicates by estimated Jaccard similarity of word n-grams. Texts are taken in the order
 * given (callers pass sample-id order, so the result does not depend on the manifest's order); a
 * text is a duplicate of the first earlier kept text at or above `threshold`. Locality-sensitive
 * banding (32 bands of 4) finds candidates without comparing every pair; each candidate is then
 * checked on its full signature.
 */
export function nearDuplicates(texts: { id: string; text: string }[], threshold: number, shingle: number): Map<string, string> {
  const duplicateOf = new Map<string, string>();
  const buckets = new Map<string, number[]>();
  const kept: { id: string; sig: Uint32Array }[] = [];
  for (const { id, text } of texts) {
    const sig = signature(text, shingle);
    const keys: string[] = [];
    const candidates = new Set<number>();
    for (let b = 0; b < BANDS; b++) {
      const key = `${b}:${Array.prototype.join.call(sig.subarray(b * ROWS, (b + 1) * ROWS), ",")}`;
      keys.push(key);
      for (const k of buckets.get(key) ?? []) candidates.add(k);
    }
    let match: string | undefined;
    for (const k of [...candidates].sort((x, y) => x - y)) {
      if (similarity(sig, kept[k]!.sig) >= threshold) {
        match = kept[k]!.id;
        break;
      }
    }
    if (match) {
      duplicateOf.set(id, match);
      continue;
    }
    const index = kept.push({ id, sig }) - 1;
    for (const key of keys) {
      const list = buckets.get(key);
      if (list) list.push(index);
      else buckets.set(key, [index]);
    }
  }
  return duplicateOf;
}
