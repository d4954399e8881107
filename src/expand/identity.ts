import type { DimValue } from "../manifest/types.js";
import { hash64, hash64Bytes } from "../util/hash.js";

/**
 * A combination's id: its (dimension, value key) pairs sorted by dimension name, so neither the
 * order of values in a list nor the order of dimensions in the manifest moves any sample. The
 * text hashed is canonical JSON of those pairs, written out directly: this runs once per
 * combination, a million times for a million samples.
 */
export function comboId(names: readonly string[], values: readonly DimValue[]): string {
  const order = sortedOrder(names);
  const heads = headsOf(names);
  // The same UTF-8 bytes as the text `combo:v1:[["name",key],...]`, laid out in one buffer from
  // pieces encoded once: a million combinations build no million strings to hash.
  buffer.set(COMBO_PREFIX, 0);
  let at = COMBO_PREFIX.length;
  for (let i = 0; i < order.length; i++) {
    const k = order[i]!;
    const head = heads[k]!;
    const json = bytesOf(values[k]!);
    if (at + head.length + json.length + 3 > buffer.length) grow(at + head.length + json.length + 3);
    if (i) buffer[at++] = COMMA;
    buffer.set(head, at);
    at += head.length;
    buffer.set(json, at);
    at += json.length;
    buffer[at++] = CLOSE;
  }
  buffer[at++] = CLOSE;
  return hash64Bytes(buffer.subarray(0, at));
}

const utf8 = new TextEncoder();
const COMBO_PREFIX = utf8.encode("combo:v1:[");
const COMMA = ",".charCodeAt(0);
const CLOSE = "]".charCodeAt(0);
let buffer = new Uint8Array(1024);
function grow(need: number): void {
  const bigger = new Uint8Array(Math.max(need, 2 * buffer.length));
  bigger.set(buffer);
  buffer = bigger;
}

/** A value's key as JSON, encoded once per value. */
const jsons = new WeakMap<DimValue, Uint8Array>();
function bytesOf(v: DimValue): Uint8Array {
  let j = jsons.get(v);
  if (j === undefined) jsons.set(v, (j = utf8.encode(JSON.stringify(v.key))));
  return j;
}

const orders = new WeakMap<readonly string[], number[]>();
function sortedOrder(names: readonly string[]): number[] {
  let o = orders.get(names);
  if (!o) {
    o = names.map((_, i) => i).sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0));
    orders.set(names, o);
  }
  return o;
}

/** `["name",` per dimension, encoded once per names array rather than once per combination. */
const headCache = new WeakMap<readonly string[], Uint8Array[]>();
function headsOf(names: readonly string[]): Uint8Array[] {
  let h = headCache.get(names);
  if (!h) headCache.set(names, (h = names.map((n) => utf8.encode(`[${JSON.stringify(n)},`))));
  return h;
}

export function sampleId(combo: string, repeat: number): string {
  return hash64(`sample:v1:${combo}:${repeat}`);
}
