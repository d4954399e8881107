import assert from "node:assert/strict";
import { test } from "node:test";
import { expand } from "../../src/expand/expand.js";
import { parseManifest } from "../../src/manifest/load.js";
import { spaceSize } from "../../src/manifest/resolve-combine.js";
import type { Manifest } from "../../src/manifest/types.js";

async function manifest(dimensions: string, combine = "", extra = ""): Promise<Manifest> {
  const text = `version: 1\nname: t\nseed: 7\ndimensions:\n${dimensions}\n${combine ? `combine:\n${combine}\n` : ""}${extra}output: { path: dist/x.jsonl, prompt: "p", completion: "c" }\n`;
  return parseManifest("dataset.yaml", "/nonexistent/dataset.yaml", text, {});
}

const ids = (m: Manifest) => expand(m).map((s) => s.id);
const values = (m: Manifest) => expand(m).map((s) => s.values.map((v) => v.key).join("|"));

test("product: every combination, first dimension outermost, excludes removed", async () => {
  const m = await manifest("  a: [x, y]\n  b: [1, 2, 3]", "  exclude: [{ a: y, b: [2, 3] }]");
  assert.deepEqual(values(m), ["x|1", "x|2", "x|3", "y|1"]);
});

test("a sample's id depends on its values, not on list order, dimension order or neighbours", async () => {
  const base = await manifest("  a: [x, y]\n  b: [1, 2]");
  const reordered = await manifest("  b: [2, 1]\n  a: [y, x]");
  const grown = await manifest("  a: [x, y, z]\n  b: [1, 2]");
  const byValue = (m: Manifest) =>
    new Map(
      expand(m).map((s) => [
        s.values
          .map((v) => v.key)
          .sort()
          .join("|"),
        s.id,
      ]),
    );
  const b = byValue(base);
  for (const [k, id] of byValue(reordered)) assert.equal(id, b.get(k), `reordering moved ${k}`);
  const g = byValue(grown);
  for (const [k, id] of b) assert.equal(g.get(k), id, `adding a value moved ${k}`);
  assert.equal(new Set(ids(grown)).size, 6);
});

test("repeat gives each copy its own id but one combination id", async () => {
  const m = await manifest("  a: [x]", "  repeat: 3");
  const s = expand(m);
  assert.equal(s.length, 3);
  assert.equal(new Set(s.map((x) => x.id)).size, 3);
  assert.equal(new Set(s.map((x) => x.comboId)).size, 1);
  assert.deepEqual(
    s.map((x) => x.repeat),
    [0, 1, 2],
  );
});

test("conditional dimension follows its parent's value", async () => {
  const m = await manifest(
    "  genre: [sf, romance, comedy]\n  sub:\n    by: genre\n    values: { sf: [space opera, cyberpunk], romance: [regency] }\n    default: [plain]",
  );
  assert.deepEqual(values(m), ["sf|space opera", "sf|cyberpunk", "romance|regency", "comedy|plain"]);
});

test("zip pairs the i-th values", async () => {
  const m = await manifest("  a: [x, y, z]\n  b: [1, 2, 3]", "  mode: zip");
  assert.deepEqual(values(m), ["x|1", "y|2", "z|3"]);
});

const big = "  a: [a0, a1, a2, a3, a4, a5, a6, a7]\n  b: [b0, b1, b2, b3, b4, b5, b6, b7]\n  c: [c0, c1, c2, c3, c4, c5, c6, c7]";

test("sample: seeded and deterministic, n combinations in declaration order", async () => {
  const m = await manifest(big, "  mode: sample\n  n: 50");
  const s1 = ids(m);
  assert.equal(s1.length, 50);
  assert.deepEqual(ids(await manifest(big, "  mode: sample\n  n: 50")), s1);
  const order = values(await manifest(big, "  mode: product"));
  const positions = values(m).map((v) => order.indexOf(v));
  assert.deepEqual(
    positions,
    [...positions].sort((a, b) => a - b),
  );
});

test("sample: raising n keeps every sample already chosen", async () => {
  const small = new Set(ids(await manifest(big, "  mode: sample\n  n: 50")));
  const larger = new Set(ids(await manifest(big, "  mode: sample\n  n: 120")));
  for (const id of small) assert.ok(larger.has(id));
});

test("sample: adding a value displaces only about the new value's fair share", async () => {
  const before = new Set(ids(await manifest(big, "  mode: sample\n  n: 100")));
  const grown = big.replace("a7]", "a7, a8]");
  const after = ids(await manifest(grown, "  mode: sample\n  n: 100"));
  const kept = after.filter((id) => before.has(id)).length;
  // a8 is 1 of 9 values of a: a fair sample gives it ~11 of 100; everything else must stay.
  assert.ok(kept >= 80, `only ${kept} of 100 samples survived adding one value`);
  assert.ok(kept < 100, "the new value never got a share");
});

test("sample: weights make a value proportionally more likely", async () => {
  const dims = "  a:\n    - { value: heavy, weight: 4 }\n    - light\n  b: [" + Array.from({ length: 200 }, (_, i) => `v${i}`).join(", ") + "]";
  const chosen = expand(await manifest(dims, "  mode: sample\n  n: 100"));
  const heavy = chosen.filter((s) => s.values[0]!.key === "heavy").length;
  assert.ok(heavy > 65 && heavy < 95, `heavy chosen ${heavy} times of 100, expected ~80`);
});

test("pairwise: every pair of values occurs, with far fewer samples than the product", async () => {
  const m = await manifest(big + "\n  d: [d0, d1, d2, d3]", "  mode: pairwise");
  const s = expand(m);
  assert.ok(s.length < (8 * 8 * 8 * 4) / 4, `${s.length} samples is not much of a reduction`);
  const pairs = new Set<string>();
  for (const x of s) for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++) pairs.add(`${i}=${x.values[i]!.key},${j}=${x.values[j]!.key}`);
  assert.equal(pairs.size, 8 * 8 * 3 + 8 * 4 * 2 + 0 + 8 * 4);
  assert.deepEqual(ids(m), ids(await manifest(big + "\n  d: [d0, d1, d2, d3]", "  mode: pairwise")));
});

test("spaceSize: exact with conditional dimensions, without building the product", () => {
  const v = (...keys: string[]) => keys.map((key) => ({ key, text: key, weight: 1 }));
  const genre = { name: "genre", kind: "list" as const, values: v("a", "b") };
  const sub = {
    name: "sub",
    kind: "conditional" as const,
    by: "genre",
    values: v("a1", "a2", "a3", "b1"),
    byValue: new Map([
      ["a", v("a1", "a2", "a3")],
      ["b", v("b1")],
    ]),
  };
  const place = { name: "place", kind: "list" as const, values: v("x", "y", "z") };
  assert.equal(spaceSize([genre, sub, place]), (3 + 1) * 3);
  assert.equal(spaceSize([place, genre, sub]), 3 * (3 + 1));
  const wide = Array.from({ length: 30 }, (_, i) => ({ name: `d${i}`, kind: "list" as const, values: v(...Array.from({ length: 30 }, (_, j) => `v${j}`)) }));
  assert.ok(Math.abs(spaceSize(wide) / 30 ** 30 - 1) < 1e-9, "30^30, counted without enumerating");
  // Many parent values, each child right after its parent: states merge once the parent is done.
  const big = { name: "a", kind: "list" as const, values: v(...Array.from({ length: 400 }, (_, i) => `a${i}`)) };
  const child = {
    name: "ac",
    kind: "conditional" as const,
    by: "a",
    values: v("x", "y", "z"),
    byValue: new Map(big.values.map((x, i) => [x.key, i === 0 ? v("x", "y") : v("z")])),
  };
  const b = { name: "b", kind: "list" as const, values: v(...Array.from({ length: 300 }, (_, i) => `b${i}`)) };
  assert.equal(spaceSize([big, child, b]), (2 + 399) * 300);
});
