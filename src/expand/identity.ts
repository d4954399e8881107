import { canonicalJson } from "../util/canonical-json.js";
import { hash64 } from "../util/hash.js";
import type { DimValue } from "../manifest/types.js";

/**
 * A combination's id: its (dimension, value key) pairs sorted by dimension name, so neither the
 * order of values in a list nor the order of dimensions in the manifest moves any sample.
 */
export function comboId(names: readonly string[], values: readonly DimValue[]): string {
  const pairs = names.map((n, i) => [n, values[i]!.key] as const).sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
  return hash64("combo:v1:" + canonicalJson(pairs));
}

export function sampleId(combo: string, repeat: number): string {
  return hash64(`sample:v1:${combo}:${repeat}`);
}
