import type { DimValue, Manifest, Match } from "../manifest/types.js";

const built = new WeakMap<Manifest, Constraints>();

/** An assignment of value indices to dimensions (declaration order); OPEN where none is chosen yet. */
export type Row = Int32Array;
export const OPEN = -1;

/**
 * The rules of a space over value indices (a dimension's index into its `values`): which values
 * of a conditional dimension go with which parent value, and the excludes. What lets pairwise
 * work without the product: whether a partial combination can still be completed into one the
 * manifest allows, found by a depth-first search over the few dimensions a rule names. The
 * others take any value, so a space with no rule answers at once.
 */
export class Constraints {
  /** One per manifest: its search memo is shared by whoever asks (pairwise, coverage). */
  static of(m: Manifest): Constraints {
    let c = built.get(m);
    if (!c) built.set(m, (c = new Constraints(m)));
    return c;
  }

  readonly names: string[];
  readonly sizes: number[];
  /** Dimensions some exclude or conditional names; the rest never decide anything. */
  readonly constrained: boolean[];
  private readonly dims: Manifest["dimensions"];
  private readonly parent: number[];
  /** Conditional d: ok[d][parentValue * sizes[d] + value]. */
  private readonly childOk: (Uint8Array | undefined)[];
  /** Conditional d: per parent value, its value indices (in the parent's list order). */
  private readonly childLists: (number[][] | undefined)[];
  private readonly children: number[][];
  private readonly rules: { dim: number; ok: Uint8Array }[][];
  private readonly rulesOf: number[][];
  private readonly searchOrder: number[];
  /** The dimensions a rule, or a conditional's parent or child, ties each dimension to. */
  private readonly neighbours: number[][];
  private readonly memo = new Map<string, boolean>();
  private probe?: Row;

  constructor(m: Manifest) {
    const dims = m.dimensions;
    this.dims = dims;
    this.names = dims.map((d) => d.name);
    this.sizes = dims.map((d) => d.values.length);
    const index = new Map(this.names.map((n, i) => [n, i]));
    const keyIndex = dims.map((d) => new Map(d.values.map((v, i) => [v.key, i])));
    this.parent = dims.map((d) => (d.by ? index.get(d.by)! : -1));
    this.children = dims.map(() => []);
    this.childOk = [];
    this.childLists = [];
    dims.forEach((d, i) => {
      if (!d.by || !d.byValue) return;
      const p = this.parent[i]!;
      this.children[p]!.push(i);
      const ok = new Uint8Array(this.sizes[p]! * this.sizes[i]!);
      const lists: number[][] = [];
      dims[p]!.values.forEach((pv, a) => {
        const list = (d.byValue!.get(pv.key) ?? []).map((v) => keyIndex[i]!.get(v.key)!);
        lists.push(list);
        for (const b of list) ok[a * this.sizes[i]! + b] = 1;
      });
      this.childOk[i] = ok;
      this.childLists[i] = lists;
    });
    this.rules = compileRules(m.combine.exclude, index, keyIndex, this.sizes);
    this.rulesOf = dims.map(() => []);
    this.rules.forEach((r, k) => {
      for (const { dim } of r) this.rulesOf[dim]!.push(k);
    });
    this.constrained = dims.map((_, i) => this.parent[i]! >= 0 || this.children[i]!.length > 0 || this.rulesOf[i]!.length > 0);
    this.searchOrder = dims.map((_, i) => i).filter((i) => this.constrained[i]);
    this.neighbours = dims.map((_, d) => {
      const tied = new Set<number>(this.children[d]);
      if (this.parent[d]! >= 0) tied.add(this.parent[d]!);
      for (const k of this.rulesOf[d]!) for (const { dim } of this.rules[k]!) tied.add(dim);
      tied.delete(d);
      return [...tied].sort((x, y) => x - y);
    });
  }

  /** Whether some allowed combination holds value a of dimension i and value b of dimension j. */
  pairAllowed(i: number, a: number, j: number, b: number): boolean {
    const probe = (this.probe ??= new Int32Array(this.sizes.length).fill(OPEN));
    if (!this.constrained[i] && !this.constrained[j]) return this.completable(probe);
    probe[i] = a;
    probe[j] = b;
    const ok = this.completable(probe);
    probe[i] = OPEN;
    probe[j] = OPEN;
    return ok;
  }

  /** The values a dimension may take in `row`: a conditional's parent's list once the parent is chosen. */
  choices(d: number, row: Row): number[] | undefined {
    const p = this.parent[d]!;
    return p >= 0 && row[p]! >= 0 ? this.childLists[d]![row[p]!] : undefined;
  }

  /** Whether some combination the manifest allows agrees with every value `row` has chosen. */
  completable(row: Row): boolean {
    if (this.searchOrder.length === 0) return true;
    let key = "";
    for (const d of this.searchOrder) key += `${row[d]},`;
    let ok = this.memo.get(key);
    if (ok === undefined) {
      const r = row.slice();
      ok = this.consistent(r) && this.search(r, 0, () => 0);
      if (this.memo.size > 1_000_000) this.memo.clear();
      this.memo.set(key, ok);
    }
    return ok;
  }

  /**
   * Fill the open constrained dimensions of `row` in place with values that complete it, trying
   * each dimension's values from `start(d)` on (so fills spread over the values), or return
   * false, leaving it as it was. Unconstrained open dimensions stay open.
   */
  complete(row: Row, start: (d: number) => number): boolean {
    const r = row.slice();
    if (!this.consistent(r) || !this.search(r, 0, start)) return false;
    row.set(r);
    return true;
  }

  /** The value object of dimension d in a complete row: a conditional's from its parent's list, whose weight is that list's. */
  valueOf(d: number, row: Row): DimValue {
    const dim = this.dims[d]!;
    const p = this.parent[d]!;
    if (p < 0 || !dim.byValue) return dim.values[row[d]!]!;
    const key = dim.values[row[d]!]!.key;
    return dim.byValue.get(this.dims[p]!.values[row[p]!]!.key)!.find((v) => v.key === key)!;
  }

  private search(row: Row, at: number, start: (d: number) => number): boolean {
    if (at === this.searchOrder.length) return true;
    const d = this.searchOrder[at]!;
    if (row[d]! >= 0) return this.search(row, at + 1, start);
    const list = this.choices(d, row);
    const size = list ? list.length : this.sizes[d]!;
    const s = size ? start(d) % size : 0;
    for (let j = 0; j < size; j++) {
      const k = (s + j) % size;
      row[d] = list ? list[k]! : k;
      if (this.fits(row, d) && this.ahead(row, d) && this.search(row, at + 1, start)) return true;
    }
    row[d] = OPEN;
    return false;
  }

  /**
   * Every rule over chosen values holds (for a row given from outside, with any dimensions
   * chosen), and each open constrained dimension still has a value that fits.
   */
  private consistent(row: Row): boolean {
    for (let d = 0; d < row.length; d++) if (row[d]! >= 0 && !this.fits(row, d)) return false;
    for (const d of this.searchOrder) if (row[d]! < 0 && !this.supported(row, d)) return false;
    return true;
  }

  /**
   * Forward checking: once d is chosen, each open dimension tied to it still has a value that
   * fits. A pair that a later dimension makes impossible is then a dead end at once, not after
   * every combination of the constrained dimensions declared between.
   */
  private ahead(row: Row, d: number): boolean {
    for (const e of this.neighbours[d]!) if (row[e]! < 0 && !this.supported(row, e)) return false;
    return true;
  }

  /** Whether some value of the open dimension e fits `row` as far as it is chosen (e is left open). */
  private supported(row: Row, e: number): boolean {
    const list = this.choices(e, row);
    const size = list ? list.length : this.sizes[e]!;
    let ok = false;
    for (let j = 0; j < size && !ok; j++) {
      row[e] = list ? list[j]! : j;
      ok = this.fits(row, e);
    }
    row[e] = OPEN;
    return ok;
  }

  /** The rules that name dimension d hold, as far as `row` has chosen. */
  private fits(row: Row, d: number): boolean {
    const v = row[d]!;
    const p = this.parent[d]!;
    if (p >= 0 && row[p]! >= 0 && !this.childOk[d]![row[p]! * this.sizes[d]! + v]) return false;
    for (const c of this.children[d]!) if (row[c]! >= 0 && !this.childOk[c]![v * this.sizes[c]! + row[c]!]) return false;
    for (const k of this.rulesOf[d]!) if (this.rules[k]!.every(({ dim, ok }) => row[dim]! >= 0 && ok[row[dim]!])) return false;
    return true;
  }
}

function compileRules(matches: Match[], index: Map<string, number>, keyIndex: Map<string, number>[], sizes: number[]): { dim: number; ok: Uint8Array }[][] {
  return matches.map((rule) =>
    [...rule].map(([name, keys]) => {
      const dim = index.get(name)!;
      const ok = new Uint8Array(sizes[dim]!);
      for (const k of keys) {
        const i = keyIndex[dim]!.get(k);
        if (i !== undefined) ok[i] = 1;
      }
      return { dim, ok };
    }),
  );
}

/** An exclude test over a complete combination's values (by key). */
export function compileExcludes(matches: Match[], index: Map<string, number>): (values: readonly DimValue[]) => boolean {
  const compiled = matches.map((m) => [...m].map(([name, set]) => [index.get(name)!, set] as const));
  if (compiled.length === 0) return () => false;
  return (values) => compiled.some((rule) => rule.every(([i, set]) => set.has(values[i]!.key)));
}
