import type { Manifest } from "../manifest/types.js";
import { Constraints } from "./constraints.js";
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

/**
 * The value pairs of dimensions i < j that some combination the manifest allows holds: a
 * conditional's values only under their parent's, and no pair every completion of which an
 * exclude removes (whichever dimensions the exclude names).
 */
export function allowedPairs(m: Manifest, i: number, j: number): Set<string> {
  const c = Constraints.of(m);
  const a = m.dimensions[i]!;
  const b = m.dimensions[j]!;
  const pairs = new Set<string>();
  for (let x = 0; x < a.values.length; x++)
    for (let y = 0; y < b.values.length; y++) if (c.pairAllowed(i, x, j, y)) pairs.add(JSON.stringify([a.values[x]!.key, b.values[y]!.key]));
  return pairs;
}
