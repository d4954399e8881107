import { hash128 } from "./hash.js";

/**
 * A UUID (version 4 layout) derived from a string instead of a random source: the tutorial's
 * "random UUID at the top of the prompt" trick, made reproducible.
 */
export function deterministicUuid(source: string): string {
  const hex = hash128(source);
  // Version nibble 4 and variant bits 10xx, spliced in by slicing: this runs once per sample and step.
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
