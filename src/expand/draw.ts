import { UsageError } from "../errors.js";
import type { DimValue, Manifest } from "../manifest/types.js";
import { hash32 } from "../util/hash.js";
import { compileExcludes } from "./constraints.js";
import { comboId } from "./identity.js";

interface Combination {
  readonly values: DimValue[];
  readonly id: string;
}

/**
 * A seeded, weighted sample of n combinations from a space too large to enumerate: candidate 0,
 * 1, 2... each takes, per dimension in declaration order, one value by weighted rendezvous
 * hashing (the value whose seeded hash of (candidate, dimension, value) gives the highest
 * u^(1/weight)), a conditional dimension choosing from its parent's value's list. Excluded
 * candidates and repeats of an earlier one are skipped, until n are kept, in candidate order.
 *
 * A combination comes up with probability proportional to the product of its values' weights,
 * as with the streaming sample (a parent value's weight is scaled by the weight its conditional
 * dimensions offer under it), and n distinct draws in turn are a sample without replacement of
 * that law. What edits do: raising n keeps every sample (the first candidates do not change);
 * adding a value to a dimension changes only the candidates where the new value wins there,
 * about its share of them, and leaves every other dimension's choice alone; removing one
 * re-draws only the candidates that had it; reordering a list changes nothing.
 */
export function draw(m: Manifest, n: number, seed: number): Combination[] {
  const out: Combination[] = [];
  eachDrawn(m, n, seed, (values, id) => out.push({ values, id }));
  return out;
}

/** draw(), handing each combination over as it is found (expand makes its sample at once, with no combination object in between). */
export function eachDrawn(m: Manifest, n: number, seed: number, visit: (values: DimValue[], id: string) => void): void {
  const dims = m.dimensions;
  const names = dims.map((d) => d.name);
  const index = new Map(names.map((x, i) => [x, i]));
  const excluded = compileExcludes(m.combine.exclude, index);
  const mass = subtreeMass(m);
  const pick = dims.map((d, i) => {
    const salt = hash32(`draw:v1:${seed}:${d.name}`) | 0;
    const chooser = (list: readonly DimValue[]) => rendezvous(list, (v) => v.weight * (mass[i]!.get(v.key) ?? 1), salt);
    if (!d.by || !d.byValue) return { parent: -1, any: chooser(d.values), under: undefined };
    const under = new Map([...d.byValue].map(([k, list]) => [k, chooser(list)]));
    return { parent: index.get(d.by)!, any: undefined, under };
  });
  const seedSalt = hash32(`draw:v1:${seed}`) | 0;
  const kept: DimValue[][] = [];
  const seen = new SeenCombinations(n);
  const values: DimValue[] = new Array(dims.length);
  // Past this many candidates per sample wanted, the excludes leave too little to draw from.
  const give = 50 * n + 100_000;
  let c = 0;
  for (; kept.length < n && c < give; c++) {
    const h = mix((c + seedSalt) | 0);
    let fp = 0;
    let ok = true;
    for (let d = 0; d < dims.length && ok; d++) {
      const p = pick[d]!;
      const r = p.any ?? p.under!.get(values[p.parent]!.key);
      const k = r ? r.choose(h) : -1;
      if (k < 0) ok = false;
      else {
        values[d] = r!.live[k]!;
        fp = (mix(fp ^ r!.keys[k]!) + d) | 0;
      }
    }
    if (!ok || excluded(values) || seen.has(fp, values, kept)) continue;
    seen.add(fp, kept.length);
    const copy = values.slice();
    kept.push(copy);
    visit(copy, comboId(names, copy));
  }
  if (kept.length < n)
    throw new UsageError(
      `combine: sample found only ${kept.length} of n: ${n} allowed combinations in ${c} draws`,
      "the excludes (or empty conditional lists) leave few combinations of this space: lower n, or exclude less",
    );
}

/**
 * The combinations drawn so far, by a 32-bit fingerprint of their values in an open-addressed
 * table of typed arrays: a million of them without a million map entries for the collector.
 * A fingerprint match is confirmed value by value, so a collision never drops a sample.
 */
class SeenCombinations {
  private readonly fps: Int32Array;
  private readonly at: Int32Array;
  private readonly mask: number;
  constructor(n: number) {
    let size = 16;
    while (size < 2 * n) size *= 2;
    this.fps = new Int32Array(size);
    this.at = new Int32Array(size);
    this.mask = size - 1;
  }
  has(fp: number, values: readonly DimValue[], kept: readonly (readonly DimValue[])[]): boolean {
    for (let s = fp & this.mask; this.at[s]; s = (s + 1) & this.mask) {
      if (this.fps[s] !== fp) continue;
      const other = kept[this.at[s]! - 1]!;
      if (other.every((v, i) => v === values[i])) return true;
    }
    return false;
  }
  add(fp: number, i: number): void {
    let s = fp & this.mask;
    while (this.at[s]) s = (s + 1) & this.mask;
    this.fps[s] = fp;
    this.at[s] = i + 1;
  }
}

/**
 * Per dimension, a value's share of the space under it: the product over its conditional
 * dimensions of the weight of their lists under it (recursively), so that choosing the parent
 * by weight × this draws whole combinations by the product of their weights.
 */
function subtreeMass(m: Manifest): Map<string, number>[] {
  const dims = m.dimensions;
  const mass: Map<string, number>[] = dims.map(() => new Map());
  for (let i = dims.length - 1; i >= 0; i--) {
    const children = dims.map((c, j) => [c, j] as const).filter(([c]) => c.by === dims[i]!.name);
    if (children.length === 0) continue;
    for (const v of dims[i]!.values) {
      let w = 1;
      for (const [c, j] of children) w *= (c.byValue!.get(v.key) ?? []).reduce((s, u) => s + u.weight * (mass[j]!.get(u.key) ?? 1), 0);
      mass[i]!.set(v.key, w);
    }
  }
  return mass;
}

/**
 * A chooser over one list: per candidate hash, the value maximising u^(1/w), i.e. the smallest
 * exponential arrival -ln(u)/w, so value v wins with probability w_v / Σw. Each value's u comes
 * from the candidate, the dimension and the value's own key, never its position: the other
 * values' draws do not move when one is added.
 */
function rendezvous(list: readonly DimValue[], weight: (v: DimValue) => number, salt: number): Chooser {
  const live = list.filter((v) => weight(v) > 0);
  const keys = Int32Array.from(live, (v) => hash32(v.key));
  const inv = Float64Array.from(live, (v) => 1 / weight(v));
  const count = keys.length;
  if (count === 0) return { live, keys, choose: () => -1 };
  if (inv.every((x) => x === inv[0]))
    // Equal weights: the largest hash wins, compared as signed 32-bit integers (small integers to V8: no float, no log).
    return {
      live,
      keys,
      choose: (h) => {
        const hd = mix(h ^ salt);
        let best = 0;
        let top = mix(hd ^ keys[0]!);
        for (let k = 1; k < count; k++) {
          const u = mix(hd ^ keys[k]!);
          if (u > top) {
            top = u;
            best = k;
          }
        }
        return best;
      },
    };
  return {
    live,
    keys,
    choose: (h) => {
      const hd = mix(h ^ salt);
      let best = 0;
      let top = -Infinity;
      for (let k = 0; k < count; k++) {
        const score = Math.log(((mix(hd ^ keys[k]!) >>> 0) + 0.5) / 4294967296) * inv[k]!;
        if (score > top) {
          top = score;
          best = k;
        }
      }
      return best;
    },
  };
}

/** One list's values that can win (weight > 0), their key hashes, and the pick for a candidate's hash (-1: none can). */
interface Chooser {
  readonly live: readonly DimValue[];
  readonly keys: Int32Array;
  choose(h: number): number;
}

/**
 * MurmurHash3's finaliser: a bijection on 32 bits that mixes every input bit into every output
 * bit. Signed in and out, so V8 keeps it in small integers.
 */
function mix(x: number): number {
  let h = x | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
