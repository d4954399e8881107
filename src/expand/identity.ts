import type { DimValue } from "../manifest/types.js";
import { hash64 } from "../util/hash.js";

/**
 * A combination's id: its (dimension, value key) pairs sorted by dimension name, so neither the
 * order of values in a list nor the order of dimensions in the manifest moves any sample. The
 * text hashed is canonical JSON of those pairs, written out directly: this runs once per
 * combination, a million times for a million samples.
 */
export function comboId(names: readonly string[], values: readonly DimValue[]): string {
  const order = sortedOrder(names);
  const heads = headsOf(names);
  let text = "combo:v1:[";
  for (let i = 0; i < order.length; i++) {
    const k = order[i]!;
    text += `${i ? "," : ""}${heads[k]}${jsonOf(values[k]!)}]`;
  }
  return hash64(text + "]");
}

const jsons = new WeakMap<DimValue, string>();
function jsonOf(v: DimValue): string {
  let j = jsons.get(v);
  if (j === undefined) jsons.set(v, (j = JSON.stringify(v.key)));
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

/** `["name",` per dimension, written once per names array rather than once per combination. */
const headCache = new WeakMap<readonly string[], string[]>();
function headsOf(names: readonly string[]): string[] {
  let h = headCache.get(names);
  if (!h) headCache.set(names, (h = names.map((n) => `[${JSON.stringify(n)},`)));
  return h;
}

export function sampleId(combo: string, repeat: number): string {
  return hash64(`sample:v1:${combo}:${repeat}`);
}
