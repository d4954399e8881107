import type { Manifest } from "../manifest/types.js";
import type { Sample } from "./sample.js";

export interface PairCoverage {
  a: string;
  b: string;
  /** Value pairs that occur in the samples given. */
  covered: number;
  /** Value pairs the manifest allows: a conditional's own values only, excluded pairs left out. */
  total: number;
  /** Count of samples per value pair (keys as JSON [a, b]); only with `cells`. */
  cells?: Map<string, number>;
}

/**
 * Which pairs of values of every two dimensions the samples contain: what `combine: pairwise`
 * promises (every allowed pair at least once), and what a seeded sample or a filter can lose.
 */
export function pairCoverage(m: Manifest, samples: Iterable<Sample>, opts: { cells?: (a: number, b: number) => boolean } = {}): PairCoverage[] {
  const dims = m.dimensions;
  const seen: Map<string, number>[][] = dims.map(() => dims.map(() => new Map()));
  for (const s of samples)
    for (let i = 0; i < dims.length; i++)
      for (let j = i + 1; j < dims.length; j++) {
        const k = JSON.stringify([s.values[i]!.key, s.values[j]!.key]);
        const map = seen[i]![j]!;
        map.set(k, (map.get(k) ?? 0) + 1);
      }
  const out: PairCoverage[] = [];
  for (let i = 0; i < dims.length; i++)
    for (let j = i + 1; j < dims.length; j++) {
      const cells = seen[i]![j]!;
      out.push({ a: dims[i]!.name, b: dims[j]!.name, covered: cells.size, total: allowedPairs(m, i, j).size, ...(opts.cells?.(i, j) ? { cells } : {}) });
    }
  return out;
}

/** The value pairs of dimensions i < j that some combination may hold. */
export function allowedPairs(m: Manifest, i: number, j: number): Set<string> {
  const a = m.dimensions[i]!;
  const b = m.dimensions[j]!;
  const pairs = new Set<string>();
  const under = (d: typeof b, parent: typeof a, v: string) => (d.by === parent.name && d.byValue ? (d.byValue.get(v) ?? []) : d.values);
  for (const va of a.values)
    for (const vb of under(b, a, va.key)) {
      // An exclude rule that names only these two dimensions (or one of them) removes the pair from every combination.
      const excluded = m.combine.exclude.some((rule) =>
        [...rule].every(([dim, values]) => (dim === a.name ? values.has(va.key) : dim === b.name ? values.has(vb.key) : false)),
      );
      if (!excluded) pairs.add(JSON.stringify([va.key, vb.key]));
    }
  return pairs;
}
