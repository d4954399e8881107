import { unitInterval } from "../util/hash.js";

/**
 * Which split a combination falls in: a seeded number in [0,1) from the combination's id, placed
 * on the cumulative fractions. Repeats share the combination, so they never straddle splits; a
 * sample's split never changes as the dataset grows.
 */
export function splitOf(seed: number, comboId: string, split: ReadonlyArray<readonly [string, number]>): string {
  const u = unitInterval(`split:${seed}:${comboId}`);
  let acc = 0;
  for (const [name, fraction] of split) {
    acc += fraction;
    if (u < acc) return name;
  }
  return split[split.length - 1]![0];
}
