/**
 * Spaces past the product: IPOG for pairwise and seeded draws for sample, checked against brute
 * force (the product of the same dimensions and excludes) on random small spaces, and through
 * expand() on spaces too large to enumerate.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { allowedPairs } from "../../src/expand/coverage.js";
import { draw } from "../../src/expand/draw.js";
import { expand } from "../../src/expand/expand.js";
import { ipog } from "../../src/expand/ipog.js";
import { parseManifest } from "../../src/manifest/load.js";
import type { Manifest } from "../../src/manifest/types.js";
import { prng } from "../helpers/rng.js";

async function manifest(dimensions: string, combine: string, seed = 7): Promise<Manifest> {
  const text = `version: 1\nname: t\nseed: ${seed}\ndimensions:\n${dimensions}\ncombine: ${combine}\noutput: { path: dist/x.jsonl, prompt: "p", completion: "c" }\n`;
  return parseManifest("dataset.yaml", "/nonexistent/dataset.yaml", text, {});
}

/** A random space: 2–5 dimensions of 1–5 values, perhaps a conditional one, 0–3 excludes. */
function randomSpace(r: () => number): { dims: string; exclude: string } {
  const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
  const names = Array.from({ length: int(2, 5) }, (_, i) => `d${i}`);
  const values = new Map<string, string[]>();
  const lines: string[] = [];
  names.forEach((name, i) => {
    if (i > 0 && r() < 0.35) {
      const parent = names[int(0, i - 1)]!;
      const pool = Array.from({ length: int(2, 5) }, (_, j) => `${name}v${j}`);
      const lists = values.get(parent)!.map((pv) => {
        const l = pool.filter(() => r() < 0.6);
        return [pv, l.length ? l : [pool[0]!]] as const;
      });
      lines.push(`  ${name}:\n    by: ${parent}\n    values: { ${lists.map(([pv, l]) => `${JSON.stringify(pv)}: [${l.join(", ")}]`).join(", ")} }`);
      values.set(
        name,
        pool.filter((v) => lists.some(([, l]) => l.includes(v))),
      );
    } else {
      const list = Array.from({ length: int(1, 5) }, (_, j) => `${name}v${j}`);
      lines.push(`  ${name}: [${list.join(", ")}]`);
      values.set(name, list);
    }
  });
  const rules: string[] = [];
  for (let k = int(0, 3); k > 0; k--) {
    const named = names.filter(() => r() < 0.5);
    if (named.length === 0) continue;
    rules.push(
      `{ ${named
        .map(
          (n) =>
            `${n}: [${
              values
                .get(n)!
                .filter(() => r() < 0.5)
                .join(", ") || values.get(n)![0]
            }]`,
        )
        .join(", ")} }`,
    );
  }
  return { dims: lines.join("\n"), exclude: rules.length ? `, exclude: [${rules.join(", ")}]` : "" };
}

/** What brute force says: every allowed combination (by id) and every value pair some allowed combination holds. */
function bruteForce(product: Manifest): { ids: Set<string>; pairs: Set<string> } {
  const samples = expand(product);
  const pairs = new Set<string>();
  for (const s of samples) for (const p of pairsOf(s.values.map((v) => v.key))) pairs.add(p);
  return { ids: new Set(samples.map((s) => s.comboId)), pairs };
}

function pairsOf(keys: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < keys.length; i++) for (let j = i + 1; j < keys.length; j++) out.push(JSON.stringify([i, keys[i], j, keys[j]]));
  return out;
}

test("ipog on 300 random small spaces: only allowed combinations, every allowed pair (as allowedPairs counts them), the same ids as the product, deterministic", async () => {
  const r = prng(12);
  for (let c = 0; c < 300; c++) {
    const { dims, exclude } = randomSpace(r);
    const product = await manifest(dims, `{ mode: product${exclude} }`);
    const pw = await manifest(dims, `{ mode: pairwise${exclude} }`);
    const truth = bruteForce(product);
    const rows = ipog(pw, pw.seed);
    const where = `case ${c}:\n${dims}\n${exclude}`;
    const covered = new Set<string>();
    for (const row of rows) {
      assert.ok(truth.ids.has(row.id), `${where}\nrow ${row.values.map((v) => v.key)} is not an allowed combination (or its id is not the product's)`);
      for (const p of pairsOf(row.values.map((v) => v.key))) covered.add(p);
    }
    assert.equal(new Set(rows.map((x) => x.id)).size, rows.length, `${where}\na combination twice`);
    for (const p of truth.pairs) assert.ok(covered.has(p), `${where}\npair ${p} is allowed but not covered`);
    // What plan's pairwise line and the report count as allowed is what brute force finds.
    const counted = new Set<string>();
    for (let i = 0; i < pw.dimensions.length; i++)
      for (let j = i + 1; j < pw.dimensions.length; j++)
        for (const k of allowedPairs(pw, i, j)) {
          const [a, b] = JSON.parse(k) as [string, string];
          counted.add(JSON.stringify([i, a, j, b]));
        }
    assert.deepEqual([...counted].sort(), [...truth.pairs].sort(), `${where}\nallowedPairs differs from brute force`);
    assert.ok(rows.length <= Math.max(truth.ids.size, 0), `${where}\nmore rows than combinations`);
    assert.deepEqual(
      ipog(pw, pw.seed).map((x) => x.id),
      rows.map((x) => x.id),
      `${where}\nnot deterministic`,
    );
  }
});

test("ipog: a pair only a later dimension rules out is found impossible at once, not after every combination of the dimensions between", async () => {
  const V = 12;
  const vals = (p: string) => `[${Array.from({ length: V }, (_, i) => `${p}${i}`).join(", ")}]`;
  const middle = Array.from({ length: 6 }, (_, i) => `m${i}`);
  const dims = [`  a: ${vals("a")}`, `  b: ${vals("b")}`, ...middle.map((d) => `  ${d}: ${vals(d)}`), "  t: [t0, t1]"].join("\n");
  // (a0 or a2, b0 or b3) has no t; each middle dimension has a rule that rules out little.
  const rules = ["{ a: [a0, a2], t: t0 }", "{ b: [b0, b3], t: t1 }", ...middle.map((d) => `{ ${d}: ${d}1, a: a1, b: b1 }`)];
  const m = await manifest(dims, `{ mode: pairwise, exclude: [${rules.join(", ")}] }`);
  const started = performance.now();
  const rows = ipog(m, m.seed);
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 2, `${seconds.toFixed(1)} s`);
  assert.ok(rows.length >= V * V - 4, `${rows.length} rows`);
  for (const r of rows) {
    const [a, b] = [r.values[0]!.key, r.values[1]!.key];
    assert.ok(!(["a0", "a2"].includes(a) && ["b0", "b3"].includes(b)), `${a}, ${b} has no allowed t`);
  }
});

test("ipog over a single dimension: every value is a row (a row holding no pair is never dropped as spare)", async () => {
  const m = await manifest("  a: [x, y, z]", "{ mode: pairwise }");
  assert.deepEqual(
    ipog(m, m.seed)
      .map((r) => r.values.map((v) => v.key).join())
      .sort(),
    ["x", "y", "z"],
  );
});

test("ipog: 30 dimensions × 30 values in seconds, every pair covered, a few times the lower bound of 900 rows", async () => {
  const dims = Array.from({ length: 30 }, (_, i) => `  d${i}: [${Array.from({ length: 30 }, (_, j) => `v${j}`).join(", ")}]`).join("\n");
  const m = await manifest(dims, "{ mode: pairwise }");
  assert.equal(m.combine.method, "construct");
  const started = performance.now();
  const samples = expand(m);
  const seconds = (performance.now() - started) / 1000;
  assert.ok(seconds < 20, `${seconds.toFixed(1)} s`);
  assert.ok(samples.length >= 900 && samples.length < 2500, `${samples.length} rows`);
  const seen = new Uint8Array(30 * 30 * 30 * 30);
  for (const s of samples) {
    const v = s.values.map((x) => Number(x.key.slice(1)));
    for (let i = 0; i < 30; i++) for (let j = i + 1; j < 30; j++) seen[((i * 30 + j) * 30 + v[i]!) * 30 + v[j]!] = 1;
  }
  let missing = 0;
  for (let i = 0; i < 30; i++)
    for (let j = i + 1; j < 30; j++) for (let a = 0; a < 30; a++) for (let b = 0; b < 30; b++) missing += 1 - seen[((i * 30 + j) * 30 + a) * 30 + b]!;
  assert.equal(missing, 0);
  const other = expand(await manifest(dims, "{ mode: pairwise }", 8));
  assert.notDeepEqual(
    other.map((s) => s.id),
    samples.map((s) => s.id),
    "the seed changes nothing",
  );
});

test("pairwise within today's limit still walks the product (its samples are pinned); past it, IPOG", async () => {
  const list = (n: number, p: string) => `[${Array.from({ length: n }, (_, j) => `${p}${j}`).join(", ")}]`;
  const small = await manifest(`  a: ${list(10, "a")}\n  b: ${list(10, "b")}\n  c: ${list(10, "c")}`, "{ mode: pairwise }");
  assert.equal(small.combine.method, "enumerate");
  const big = await manifest(Array.from({ length: 7 }, (_, i) => `  d${i}: ${list(10, "v")}`).join("\n"), "{ mode: pairwise }");
  assert.equal(big.combine.method, "construct");
  const s = await manifest(Array.from({ length: 7 }, (_, i) => `  d${i}: ${list(10, "v")}`).join("\n"), "{ mode: sample, n: 10 }");
  assert.equal(s.combine.method, "enumerate", "10^7 combinations: the streaming sample, as before");
});

const huge = Array.from({ length: 12 }, (_, i) => `  d${i}: [${Array.from({ length: 10 }, (_, j) => `d${i}v${j}`).join(", ")}]`).join("\n");

test("sample from 10^12: n distinct, deterministic, and raising n keeps every sample", async () => {
  const m = await manifest(huge, "{ mode: sample, n: 500 }");
  assert.equal(m.combine.method, "construct");
  const a = expand(m);
  assert.equal(a.length, 500);
  assert.equal(new Set(a.map((s) => s.id)).size, 500);
  assert.deepEqual(
    expand(await manifest(huge, "{ mode: sample, n: 500 }")).map((s) => s.id),
    a.map((s) => s.id),
  );
  const more = expand(await manifest(huge, "{ mode: sample, n: 800 }")).map((s) => s.id);
  assert.deepEqual(
    more.slice(0, 500),
    a.map((s) => s.id),
  );
  assert.notDeepEqual(
    expand(await manifest(huge, "{ mode: sample, n: 500 }", 8)).map((s) => s.id),
    a.map((s) => s.id),
  );
});

test("sample from 10^12: adding a value re-draws only that dimension, about its share; reordering a list changes nothing", async () => {
  const before = expand(await manifest(huge, "{ mode: sample, n: 1000 }"));
  const grown = expand(await manifest(huge.replace("d3v9]", "d3v9, d3v10]"), "{ mode: sample, n: 1000 }"));
  const ids = new Set(before.map((s) => s.id));
  const kept = grown.filter((s) => ids.has(s.id)).length;
  const withNew = grown.filter((s) => s.values[3]!.key === "d3v10").length;
  // d3v10 is 1 of 11 values: ~91 of 1000 samples take it; every other sample must stay.
  assert.equal(kept + withNew, 1000, "a sample changed that did not take the new value");
  assert.ok(withNew > 50 && withNew < 140, `${withNew} samples took the new value, expected ~91`);
  const reordered = huge.replace(/\[(d5v0[^\]]*)\]/, (_, l: string) => `[${l.split(", ").reverse().join(", ")}]`);
  assert.notEqual(reordered, huge);
  assert.deepEqual(
    expand(await manifest(reordered, "{ mode: sample, n: 1000 }")).map((s) => s.id),
    before.map((s) => s.id),
  );
});

test("sample by draws: excludes never drawn, and a combination comes up by the product of its weights (conditionals too)", async () => {
  const dims = `  genre:\n    - { value: a, weight: 1 }\n    - { value: b, weight: 3 }\n  sub:\n    by: genre\n    values: { a: [x, y, z], b: [w] }\n  filler: [${Array.from({ length: 3000 }, (_, i) => `f${i}`).join(", ")}]`;
  const m = await manifest(dims, "{ mode: sample, n: 600, exclude: [{ sub: y }] }");
  const got = draw(m, 600, m.seed);
  assert.equal(got.length, 600);
  const truth = bruteForce(await manifest(dims, "{ mode: product, exclude: [{ sub: y }] }"));
  for (const c of got) assert.ok(truth.ids.has(c.id), `${c.values.map((v) => v.key)} is not allowed`);
  // Allowed: a-x, a-z (weight 1 each) and b-w (weight 3): a is 2 of 5.
  const a = got.filter((c) => c.values[0]!.key === "a").length;
  assert.ok(a > 200 && a < 280, `genre a drawn ${a} times of 600, expected ~240`);
  assert.equal(got.filter((c) => c.values[1]!.key === "y").length, 0);
});

test("sample by draws: a space the excludes empty is an error that says so, not a hang", async () => {
  const m = await manifest("  a: [x, y]\n  b: [1, 2]", "{ mode: sample, n: 3, exclude: [{ a: x }, { b: 1 }] }");
  assert.throws(() => draw(m, 3, m.seed), /found only 1 of n: 3/);
});

test("sample by draws: asked for every combination of a small space, it finds each exactly once", async () => {
  const m = await manifest("  a: [x, y, z]\n  b: [1, 2, 3]\n  c: [p, q]", "{ mode: sample, n: 18 }");
  const got = draw(m, 18, m.seed);
  const truth = bruteForce(await manifest("  a: [x, y, z]\n  b: [1, 2, 3]\n  c: [p, q]", "{ mode: product }"));
  assert.deepEqual(new Set(got.map((c) => c.id)), truth.ids);
});
