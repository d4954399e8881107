import type { DimValue, Manifest } from "../manifest/types.js";
import { unitInterval } from "../util/hash.js";
import { Constraints, OPEN, type Row } from "./constraints.js";
import { comboId } from "./identity.js";

interface Combination {
  readonly values: DimValue[];
  readonly id: string;
}

/**
 * A covering array of strength 2 built without the product (IPOG, Lei et al. 2007): start from
 * every allowed pair of the two largest dimensions, then add one dimension at a time, giving
 * each row the value that covers most pairs not yet covered (horizontal growth), then putting
 * each pair still missing into a row with room for it or a new row (vertical growth). A slot
 * no pair needs stays open and is filled at the end. Work is about rows × values × dimensions²,
 * never the space: 30 dimensions of 30 values take about a second.
 *
 * Every row stays completable (some allowed combination agrees with it), so excludes and
 * conditional dimensions never yield a combination the manifest does not make, and only pairs
 * that some allowed combination holds are asked for. Deterministic from the seed: ties go to
 * the value a seeded hash of (dimension, value) ranks first, rotated by row.
 */
export function ipog(m: Manifest, seed: number): Combination[] {
  const c = Constraints.of(m);
  const k = c.sizes.length;
  if (k === 0 || !c.completable(new Int32Array(k).fill(OPEN))) return [];
  // Each dimension's values in a seeded order, so ties do not always favour the first listed.
  const pref = m.dimensions.map((d) => {
    const rank = d.values.map((v) => unitInterval(`pairwise:${seed}:${d.name}:${v.key}`));
    return d.values.map((_, i) => i).sort((a, b) => rank[a]! - rank[b]!);
  });
  // Largest first: the first two fix the size of the start, later ones fit in around them.
  const order = c.sizes.map((_, i) => i).sort((a, b) => c.sizes[b]! - c.sizes[a]! || a - b);
  const rows: Row[] = [];
  const blank = () => new Int32Array(k).fill(OPEN);
  const allowedPair = (i: number, a: number, j: number, b: number) => c.pairAllowed(i, a, j, b);
  if (k === 1) {
    for (let a = 0; a < c.sizes[0]!; a++) {
      const r = blank();
      r[0] = a;
      if (c.completable(r)) rows.push(r);
    }
  } else {
    const [d0, d1] = [order[0]!, order[1]!];
    for (const a of pref[d0]!)
      for (const b of pref[d1]!)
        if (allowedPair(d0, a, d1, b)) {
          const r = blank();
          r[d0] = a;
          r[d1] = b;
          rows.push(r);
        }
    for (let t = 2; t < k; t++) grow(c, rows, order.slice(0, t), order[t]!, pref[order[t]!]!, allowedPair, blank);
  }
  return finish(c, rows, pref);
}

/** Add dimension `d` to rows that already cover every allowed pair of the dimensions in `prev`. */
function grow(
  c: Constraints,
  rows: Row[],
  prev: number[],
  d: number,
  pref: number[],
  allowedPair: (i: number, a: number, j: number, b: number) => boolean,
  blank: () => Row,
): void {
  const sd = c.sizes[d]!;
  // uncovered[i][a * sd + b]: the pair (dimension i = a, d = b) is allowed and no row holds it yet.
  const uncovered = new Map<number, Uint8Array>();
  for (const i of prev) {
    const u = new Uint8Array(c.sizes[i]! * sd);
    for (let a = 0; a < c.sizes[i]!; a++) for (let b = 0; b < sd; b++) if (allowedPair(i, a, d, b)) u[a * sd + b] = 1;
    uncovered.set(i, u);
  }
  const lists = prev.map((i) => uncovered.get(i)!);
  const cover = (r: Row) => {
    const v = r[d]!;
    for (let x = 0; x < prev.length; x++) {
      const a = r[prev[x]!]!;
      if (a >= 0) lists[x]![a * sd + v] = 0;
    }
  };
  // Horizontal: each row takes the value that covers most, if any covers something.
  for (let n = 0; n < rows.length; n++) {
    const r = rows[n]!;
    const allowed = c.choices(d, r);
    const size = allowed ? allowed.length : sd;
    let best = OPEN;
    let bestGain = 0;
    for (let j = 0; j < size; j++) {
      const v = allowed ? allowed[(j + n) % size]! : pref[(j + n) % size]!;
      let gain = 0;
      for (let x = 0; x < prev.length; x++) {
        const a = r[prev[x]!]!;
        if (a >= 0) gain += lists[x]![a * sd + v]!;
      }
      if (gain <= bestGain) continue;
      if (c.constrained[d]) {
        r[d] = v;
        const ok = c.completable(r);
        r[d] = OPEN;
        if (!ok) continue;
      }
      best = v;
      bestGain = gain;
    }
    if (best !== OPEN) {
      r[d] = best;
      cover(r);
    }
  }
  // Vertical: each pair still missing goes into the first row with room for it, else a new row.
  for (let x = 0; x < prev.length; x++) {
    const i = prev[x]!;
    const u = lists[x]!;
    for (let a = 0; a < c.sizes[i]!; a++)
      for (let b = 0; b < sd; b++) {
        if (!u[a * sd + b]) continue;
        let placed = false;
        for (const r of rows) {
          const ri = r[i]!;
          const rd = r[d]!;
          if ((ri !== a && ri !== OPEN) || (rd !== b && rd !== OPEN)) continue;
          if (ri === a && rd === b) continue;
          r[i] = a;
          r[d] = b;
          if (c.constrained[i] || c.constrained[d] ? c.completable(r) : true) {
            cover(r);
            placed = true;
            break;
          }
          r[i] = ri;
          r[d] = rd;
        }
        if (!placed) {
          const r = blank();
          r[i] = a;
          r[d] = b;
          rows.push(r);
          cover(r);
        }
      }
  }
}

/**
 * Open slots filled (constrained ones by search, the rest in a seeded rotation), then rows every
 * pair of which another row also holds dropped, last first (IPOG's vertical rows come late and
 * often turn out redundant once the open slots are filled), and duplicates with them.
 */
function finish(c: Constraints, rows: Row[], pref: number[][]): Combination[] {
  rows.forEach((r, n) => {
    if (!c.complete(r, (d) => n + d)) throw new Error("pairwise: a row that was completable no longer is");
    for (let d = 0; d < r.length; d++) if (r[d] === OPEN) r[d] = pref[d]![(n + d) % pref[d]!.length]!;
  });
  const k = c.sizes.length;
  const offsets: number[][] = [];
  let total = 0;
  for (let i = 0; i < k; i++) {
    offsets.push([]);
    for (let j = i + 1; j < k; j++) {
      offsets[i]![j] = total;
      total += c.sizes[i]! * c.sizes[j]!;
    }
  }
  const times = new Uint32Array(total);
  const each = (r: Row, f: (p: number) => void) => {
    for (let i = 0; i < k; i++) for (let j = i + 1; j < k; j++) f(offsets[i]![j]! + r[i]! * c.sizes[j]! + r[j]!);
  };
  for (const r of rows) each(r, (p) => times[p]!++);
  const keep = rows.map(() => true);
  // Under two dimensions a row holds no pair, and so none is spare: each row is the only one
  // holding its value, and is kept.
  for (let n = k < 2 ? -1 : rows.length - 1; n >= 0; n--) {
    let spare = true;
    each(rows[n]!, (p) => {
      if (times[p]! < 2) spare = false;
    });
    if (!spare) continue;
    keep[n] = false;
    each(rows[n]!, (p) => times[p]!--);
  }
  const out: Combination[] = [];
  rows.forEach((r, n) => {
    if (!keep[n]) return;
    const values = r.length ? Array.from(r, (_, d) => c.valueOf(d, r)) : [];
    out.push({ values, id: comboId(c.names, values) });
  });
  return out;
}
