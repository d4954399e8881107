import { hash128Raw } from "./hash.js";

const HEX = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));
const halves = new BigUint64Array(2);
const bytes = new Uint8Array(halves.buffer);
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
  [halves[0], halves[1]] = hash128Raw(source);
  let at = 0;
  for (let d = 0; d < 32; d++) {
    if (d === 8 || d === 12 || d === 16 || d === 20) codes[at++] = DASH;
    // Digit d of the hex digest: each half is printed most significant byte first.
    const byte = bytes[(d < 16 ? 7 : 15) - ((d & 15) >> 1)]!;
    const nibble = d & 1 ? byte & 0xf : byte >> 4;
    codes[at++] = d === 12 ? FOUR : d === 16 ? HEX[(nibble & 0x3) | 0x8]! : HEX[nibble]!;
  }
  return String.fromCharCode.apply(null, codes);
}
