import { hash128 } from "./hash.js";

/**
 * A UUID (version 4 layout) derived from a string instead of a random source: the tutorial's
 * "random UUID at the top of the prompt" trick, made reproducible.
 */
export function deterministicUuid(source: string): string {
  const hex = hash128(source).split("");
  hex[12] = "4";
  hex[16] = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  const s = hex.join("");
  return `${s.slice(0, 8)}-${s.slice(8, 12)}-${s.slice(12, 16)}-${s.slice(16, 20)}-${s.slice(20, 32)}`;
}
