import { hash128Raw } from "./hash.js";

const HEX = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
// Written big-endian through a DataView, so byte i holds hex digits 2i and 2i+1 on every platform
// (a BigUint64Array would take the machine's byte order).
const bytes = new Uint8Array(16);
const view = new DataView(bytes.buffer);
const DASH = "-".charCodeAt(0);
const FOUR = "4".charCodeAt(0);
/** The 36 character codes of the UUID being formatted (one flat string at the end, not a dozen slices). */
const codes: number[] = new Array(36).fill(0);

/**
 * A UUID (version 4 layout) derived from a string instead of a random source: the tutorial's
 * "random UUID at the top of the prompt" trick, made reproducible. It is hash128(source) as 32
 * hex digits, laid out 8-4-4-4-12, with the version nibble (digit 12) set to 4 and the variant
 * bits of digit 16 to 10xx. Runs once per sample and step: written from the digest's bytes.
 */
export function deterministicUuid(source: string): string {
  const [a, b] = hash128Raw(source);
  view.setBigUint64(0, a, false);
  view.setBigUint64(8, b, false);
  let at = 0;
  for (let d = 0; d < 32; d++) {
    if (d === 8 || d === 12 || d === 16 || d === 20) codes[at++] = DASH;
    const byte = bytes[d >> 1]!;
    const nibble = d & 1 ? byte & 0xf : byte >> 4;
    codes[at++] = d === 12 ? FOUR : d === 16 ? HEX[(nibble & 0x3) | 0x8]! : HEX[nibble]!;
  }
  return String.fromCharCode.apply(null, codes);
}
