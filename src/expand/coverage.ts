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
 * Counted in typed arrays by value index: 30 dimensions make 435 pairs of them per sample.
 */
export function pairCoverage(m: Manifest, samples: Iterable<Sample>, opts: { cells?: (a: number, b: number) => boolean } = {}): PairCoverage[] {
  const dims = m.dimensions;
  const k = dims.length;
  const index = dims.map((d) => new Map(d.values.map((v, i) => [v.key, i])));
  const sizes = dims.map((d) => d.values.length);
  const counts: Uint32Array[][] = dims.map((_, i) => dims.map((_, j) => (j > i ? new Uint32Array(sizes[i]! * sizes[j]!) : new Uint32Array(0))));
  const wantCells = dims.map((_, i) => dims.map((_, j) => j > i && (opts.cells?.(i, j) ?? false)));
  const cellMaps: Map<string, number>[][] = dims.map(() => dims.map(() => new Map()));
  const at = new Int32Array(k);
  for (const s of samples) {
    for (let i = 0; i < k; i++) at[i] = index[i]!.get(s.values[i]!.key)!;
    for (let i = 0; i < k; i++)
      for (let j = i + 1; j < k; j++) {
        counts[i]![j]![at[i]! * sizes[j]! + at[j]!]!++;
        if (wantCells[i]![j]) {
          const key = JSON.stringify([s.values[i]!.key, s.values[j]!.key]);
          const map = cellMaps[i]![j]!;
          map.set(key, (map.get(key) ?? 0) + 1);
        }
      }
  }
  const out: PairCoverage[] = [];
  for (let i = 0; i < k; i++)
    for (let j = i + 1; j < k; j++) {
      const covered = counts[i]![j]!.reduce((n, x) => n + (x ? 1 : 0), 0);
      out.push({ a: dims[i]!.name, b: dims[j]!.name, covered, total: allowedPairCount(m, i, j), ...(wantCells[i]![j] ? { cells: cellMaps[i]![j]! } : {}) });
    }
  return out;
}

/** How many value pairs of dimensions i < j some allowed combination holds (allowedPairs' size, without its strings). */
export function allowedPairCount(m: Manifest, i: number, j: number): number {
  const c = Constraints.of(m);
  let n = 0;
  for (let x = 0; x < c.sizes[i]!; x++) for (let y = 0; y < c.sizes[j]!; y++) if (c.pairAllowed(i, x, j, y)) n++;
  return n;
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
