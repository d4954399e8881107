import type { DimValue } from "../manifest/types.js";
import { unitInterval } from "../util/hash.js";

interface Combination {
  readonly values: DimValue[];
  readonly id: string;
}

/**
 * A covering array of strength 2: a subset of `all` in which every pair of values of two
 * dimensions that occurs anywhere in `all` occurs at least once. Greedy: repeatedly take the
 * combination covering the most uncovered pairs, ties broken by a seeded hash of its id, so the
 * result is deterministic. Working from the allowed combinations means excludes and conditional
 * dimensions never produce a pair that cannot exist.
 */
export function pairwise(all: Combination[], dims: number, seed: number): Combination[] {
  if (dims < 2 || all.length === 0) return all;
  const valueIndex: Map<string, number>[] = Array.from({ length: dims }, () => new Map());
  const coded = all.map((c) =>
    c.values.map((v, d) => {
      const m = valueIndex[d]!;
      let i = m.get(v.key);
      if (i === undefined) m.set(v.key, (i = m.size));
      return i;
    }),
  );
  const sizes = valueIndex.map((m) => m.size);
  const offsets: number[][] = [];
  let total = 0;
  for (let i = 0; i < dims; i++) {
    offsets.push([]);
    for (let j = i + 1; j < dims; j++) {
      offsets[i]![j] = total;
      total += sizes[i]! * sizes[j]!;
    }
  }
  const pairOf = (c: number[], i: number, j: number) => offsets[i]![j]! + c[i]! * sizes[j]! + c[j]!;
  const exists = new Uint8Array(total);
  for (const c of coded) for (let i = 0; i < dims; i++) for (let j = i + 1; j < dims; j++) exists[pairOf(c, i, j)] = 1;
  let uncovered = exists.reduce((a, b) => a + b, 0);
  const covered = new Uint8Array(total);
  const tie = all.map((c) => unitInterval(`pairwise:${seed}:${c.id}`));
  const taken = new Uint8Array(all.length);
  const chosen: number[] = [];
  while (uncovered > 0) {
    let best = -1;
    let bestGain = 0;
    for (let k = 0; k < coded.length; k++) {
      if (taken[k]) continue;
      const c = coded[k]!;
      let gain = 0;
      for (let i = 0; i < dims; i++) for (let j = i + 1; j < dims; j++) if (!covered[pairOf(c, i, j)]) gain++;
      if (gain > bestGain || (gain === bestGain && gain > 0 && tie[k]! < tie[best]!)) {
        best = k;
        bestGain = gain;
      }
    }
    taken[best] = 1;
    chosen.push(best);
    const c = coded[best]!;
    for (let i = 0; i < dims; i++)
      for (let j = i + 1; j < dims; j++) {
        const p = pairOf(c, i, j);
        if (!covered[p]) {
          covered[p] = 1;
          uncovered--;
        }
      }
  }
  return chosen.sort((a, b) => a - b).map((k) => all[k]!);
}
