import type { DimValue, Manifest } from "../manifest/types.js";
import { unitInterval } from "../util/hash.js";
import { compileExcludes } from "./constraints.js";
import { draw, eachDrawn } from "./draw.js";
import { comboId, sampleId } from "./identity.js";
import { ipog } from "./ipog.js";
import { pairwise } from "./pairwise.js";
import type { Sample } from "./sample.js";

interface Combination {
  readonly values: DimValue[];
  readonly id: string;
}

/** dimensions × combine → the ordered list of samples. Pure and deterministic. */
export function expand(m: Manifest): Sample[] {
  const samples: Sample[] = [];
  const add = (values: DimValue[], id: string) => {
    for (let r = 0; r < m.combine.repeat; r++) samples.push({ id: sampleId(id, r), comboId: id, repeat: r, values });
  };
  // A million draws become a million samples directly: no million combinations to promote and drop.
  if (m.combine.mode === "sample" && m.combine.method === "construct") eachDrawn(m, m.combine.n!, m.seed, add);
  else for (const c of combinations(m)) add(c.values, c.id);
  return samples;
}

/**
 * With `target:`, the first `count` candidates in candidate order: every combination at repeat 0,
 * then every one at repeat 1, and so on. Within a repeat, combinations go by id, not position,
 * so reordering a list moves no candidate and a new value only inserts its own. A candidate's id
 * is the sample id it would have had under `repeat:`, so ids, nonces and keys are the same.
 */
export function candidates(m: Manifest, count: number): Sample[] {
  const combos = combinations(m).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const out: Sample[] = [];
  if (combos.length === 0) return out;
  for (let k = 0; k < count; k++) {
    const c = combos[k % combos.length]!;
    const r = Math.floor(k / combos.length);
    out.push({ id: sampleId(c.id, r), comboId: c.id, repeat: r, values: c.values });
  }
  return out;
}

function combinations(m: Manifest): Combination[] {
  switch (m.combine.mode) {
    case "product":
      return product(m);
    case "zip":
      return zip(m);
    case "sample":
      return m.combine.method === "construct" ? draw(m, m.combine.n!, m.seed) : sample(m, m.combine.n!, m.seed);
    case "pairwise":
      return m.combine.method === "construct" ? ipog(m, m.seed) : pairwise(product(m), m.dimensions.length, m.seed);
  }
}

/** Every combination in declaration order (first dimension outermost), conditional values following their parent. */
function product(m: Manifest): Combination[] {
  const out: Combination[] = [];
  eachCombination(m, (values, id) => out.push({ values: values.slice(), id }));
  return out;
}

/**
 * The product, one combination at a time (`values` is reused: copy what you keep), so that a
 * sample of a large space holds only what it keeps, never the space.
 */
function eachCombination(m: Manifest, visit: (values: DimValue[], id: string) => void): void {
  const dims = m.dimensions;
  const names = dims.map((d) => d.name);
  const index = new Map(names.map((n, i) => [n, i]));
  const current: DimValue[] = new Array(dims.length);
  const exclude = compileExcludes(m.combine.exclude, index);
  const walk = (i: number) => {
    if (i === dims.length) {
      if (exclude(current)) return;
      visit(current, comboId(names, current));
      return;
    }
    const d = dims[i]!;
    const list = d.by ? d.byValue!.get(current[index.get(d.by)!]!.key)! : d.values;
    for (const v of list) {
      current[i] = v;
      walk(i + 1);
    }
  };
  walk(0);
}

function zip(m: Manifest): Combination[] {
  const names = m.dimensions.map((d) => d.name);
  const index = new Map(names.map((n, i) => [n, i]));
  const exclude = compileExcludes(m.combine.exclude, index);
  const n = m.dimensions[0]?.values.length ?? 0;
  const out: Combination[] = [];
  for (let i = 0; i < n; i++) {
    const values = m.dimensions.map((d) => d.values[i]!);
    if (!exclude(values)) out.push({ values, id: comboId(names, values) });
  }
  return out;
}

/**
 * A seeded, weighted sample of n combinations that is stable as things change: each combination
 * draws its own exponential "arrival time" -ln(u)/weight from (seed, its id), and the n earliest
 * arrivals are taken (Efraimidis–Spirakis). Raising n keeps every sample already chosen; adding a
 * value only brings in the new combinations that arrive earlier, displacing as few as a fair
 * sample must. Output keeps declaration order.
 */
function sample(m: Manifest, n: number, seed: number): Combination[] {
  // A max-heap of the n earliest arrivals seen so far, by (t, id): the same order the whole
  // space sorted would give, in memory for n combinations only.
  const heap: { i: number; t: number; c: Combination }[] = [];
  const later = (a: { t: number; c: Combination }, b: { t: number; c: Combination }) => a.t > b.t || (a.t === b.t && a.c.id > b.c.id);
  let i = 0;
  eachCombination(m, (values, id) => {
    const w = values.reduce((p, v) => p * v.weight, 1);
    const t = -Math.log(1 - unitInterval(`sample:${seed}:${id}`)) / w;
    const at = i++;
    if (heap.length === n) {
      const top = heap[0]!;
      if (!later(top, { t, c: { values, id } })) return;
      heap[0] = { i: at, t, c: { values: values.slice(), id } };
      siftDown(heap, later);
    } else {
      heap.push({ i: at, t, c: { values: values.slice(), id } });
      siftUp(heap, later);
    }
  });
  // Declaration order, as the product lists them.
  return heap.sort((a, b) => a.i - b.i).map((e) => e.c);
}

function siftUp<T>(h: T[], above: (a: T, b: T) => boolean): void {
  let k = h.length - 1;
  while (k > 0) {
    const p = (k - 1) >> 1;
    if (!above(h[k]!, h[p]!)) break;
    [h[k], h[p]] = [h[p]!, h[k]!];
    k = p;
  }
}

function siftDown<T>(h: T[], above: (a: T, b: T) => boolean): void {
  let k = 0;
  for (;;) {
    const l = 2 * k + 1;
    const r = l + 1;
    let top = k;
    if (l < h.length && above(h[l]!, h[top]!)) top = l;
    if (r < h.length && above(h[r]!, h[top]!)) top = r;
    if (top === k) return;
    [h[k], h[top]] = [h[top]!, h[k]!];
    k = top;
  }
}
