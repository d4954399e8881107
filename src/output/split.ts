import { unitInterval } from "../util/hash.js";

/**
 * Bumped when the same units can be assigned differently: it is part of a split output's
 * definition and of the up-to-date stamp, so an upgrade re-emits dist/ (without a request).
 * 2: the small-sample correction of `assignSplits`.
 */
export const SPLIT_VERSION = 2;

type Fractions = ReadonlyArray<readonly [string, number]>;

/**
 * Where a unit falls by its hash alone: a seeded number in [0,1) from the unit's id (a
 * combination's, or the values of `group_by`'s dimensions), placed on the cumulative fractions.
 */
export function splitOf(seed: number, unitId: string, split: Fractions): string {
  const u = unitInterval(`split:${seed}:${unitId}`);
  let acc = 0;
  for (const [name, fraction] of split) {
    acc += fraction;
    if (u < acc) return name;
  }
  return split[split.length - 1]![0];
}

export interface Assignment {
  /** Unit id → split name. */
  readonly splits: Map<string, string>;
  /** Units placed other than their hash alone would place them (the small-sample correction). */
  readonly corrected: number;
}

/**
 * Every unit's split. Two goals pull apart: exact proportions (rank the units by hash, cut at the
 * quotas) move a unit whenever the dataset grows, since each cut is an empirical quantile that
 * wanders by ~√N units: a row trained on in one release turns up in the next one's validation
 * set. A fixed threshold on each unit's own hash never moves anything, but its counts are
 * binomial: 20 units at 0.9/0.1 leave validation empty 12% of the time.
 *
 * So: the threshold, unless a split's count falls outside a band around its exact share
 * (`band`); then the cut between neighbouring splits is moved, in hash order, only as far as the
 * band requires, so the units that change are those nearest the boundary. The band is exact at
 * small sizes (where one row is a visible share) and widens to about two standard deviations of
 * chance at large ones (where the plain threshold is almost always inside it).
 *
 * What that guarantees as the dataset grows from N to N' units: a unit is placed by its hash
 * alone unless it is one of the `corrected` units at that size, so at most corrected(N) +
 * corrected(N') of the old units change split, and none when neither size needed a correction.
 */
export function assignSplits(seed: number, unitIds: Iterable<string>, split: Fractions): Assignment {
  const ids = [...new Set(unitIds)];
  const n = ids.length;
  const k = split.length;
  const u = new Float64Array(n);
  const natural = new Uint16Array(n);
  const count = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) {
    u[i] = unitInterval(`split:${seed}:${ids[i]}`);
    // The same accumulation as splitOf, so an uncorrected unit lands where it always did.
    let j = 0;
    for (let acc = split[0]![1]; j < k - 1 && u[i]! >= acc; acc += split[++j]![1]);
    natural[i] = j;
    count[j]!++;
  }
  const b = bands(n, split);
  const splits = new Map<string, string>();
  if (count.every((c, j) => c >= b[j]!.lo && c <= b[j]!.hi)) {
    // The usual case at any size worth a split: no sort needed.
    for (let i = 0; i < n; i++) splits.set(ids[i]!, split[natural[i]!]![0]);
    return { splits, corrected: 0 };
  }
  const order = Array.from({ length: n }, (_, i) => i).sort((x, y) => u[x]! - u[y]! || (ids[x]! < ids[y]! ? -1 : ids[x]! > ids[y]! ? 1 : 0));
  const cutsNatural = [0];
  for (let j = 0; j < k; j++) cutsNatural.push(cutsNatural[j]! + count[j]!);
  const cuts = correctedCuts(cutsNatural, b);
  for (let j = 0; j < k; j++) for (let r = cuts[j]!; r < cuts[j + 1]!; r++) splits.set(ids[order[r]!]!, split[j]![0]);
  let corrected = 0;
  for (let j = 1; j < k; j++) corrected += Math.abs(cuts[j]! - cutsNatural[j]!);
  return { splits, corrected };
}

/**
 * The counts each split may have among n units: its exact share p·n, rounded either way, widened
 * by 2σ − 2 rows (σ = √(n·p·(1−p)), the spread of a binomial count), and at least one unit when
 * there are as many units as splits. Rows are taken from the largest splits when those minimums
 * cannot all be met otherwise.
 */
export function bands(n: number, split: Fractions): { lo: number; hi: number }[] {
  const out = split.map(([, p]) => {
    // Rounded so that 0.7 × 10 is 7, not 7.000000000000001.
    const ideal = Math.round(p * n * 1e9) / 1e9;
    const tol = Math.max(0, 2 * Math.sqrt(n * p * (1 - p)) - 2);
    let lo = Math.min(Math.floor(ideal), Math.ceil(ideal - tol));
    let hi = Math.max(Math.ceil(ideal), Math.floor(ideal + tol));
    lo = Math.max(0, lo);
    hi = Math.min(n, hi);
    if (n >= split.length) lo = Math.max(1, lo);
    return { lo, hi: Math.max(hi, lo) };
  });
  for (let sum = out.reduce((a, b) => a + b.lo, 0); sum > n; sum--) {
    const widest = out.reduce((a, b) => (b.lo > a.lo ? b : a));
    widest.lo--;
  }
  return out;
}

/** Each cut moved from its natural place only as far as the bands (and those after it) require. */
function correctedCuts(natural: readonly number[], b: readonly { lo: number; hi: number }[]): number[] {
  const n = natural[natural.length - 1]!;
  const cuts = [0];
  for (let j = 1; j < b.length; j++) {
    let restLo = 0;
    let restHi = 0;
    for (let i = j; i < b.length; i++) {
      restLo += b[i]!.lo;
      restHi += b[i]!.hi;
    }
    const prev = cuts[j - 1]!;
    const min = Math.max(prev + b[j - 1]!.lo, n - restHi);
    const max = Math.min(prev + b[j - 1]!.hi, n - restLo);
    cuts.push(Math.min(max, Math.max(min, natural[j]!)));
  }
  cuts.push(n);
  return cuts;
}
