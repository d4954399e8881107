import assert from "node:assert/strict";
import { test } from "node:test";
import { canonicalJson } from "../../src/util/canonical-json.js";
import { prng } from "../helpers/rng.js";

/** The definition, written plainly: what the faster loop must always print. */
function reference(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (value === undefined) return "null";
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError(`cannot hash non-finite number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${reference(obj[k])}`).join(",")}}`;
}

const PIECES = ["a", "b", "Z", "_", "é", "日本", "\u{1F600}", '"', "\\", "\n", "\u0000", "10", "2", "key", " "];

function randomValue(r: () => number, depth: number): unknown {
  const k = r();
  if (depth > 3 || k < 0.35) {
    const p = r();
    if (p < 0.2) return Math.floor(r() * 2000) - 1000;
    if (p < 0.3) return r() * 1e6;
    if (p < 0.4) return r() < 0.5;
    if (p < 0.5) return null;
    if (p < 0.55) return undefined;
    return randomString(r);
  }
  if (k < 0.6) {
    const a: unknown[] = [];
    const n = Math.floor(r() * 5);
    for (let i = 0; i < n; i++) {
      // Holes too: a sparse array is printed as join prints it.
      if (r() < 0.1) a.length++;
      else a.push(randomValue(r, depth + 1));
    }
    return a;
  }
  const o: Record<string, unknown> = {};
  const n = Math.floor(r() * 6);
  for (let i = 0; i < n; i++) o[randomString(r)] = randomValue(r, depth + 1);
  return o;
}

function randomString(r: () => number): string {
  let s = "";
  const n = Math.floor(r() * 4);
  for (let i = 0; i < n; i++) s += PIECES[Math.floor(r() * PIECES.length)];
  return s;
}

test("canonicalJson prints what the plain definition prints, on 20,000 random values", () => {
  const r = prng(20261203);
  for (let i = 0; i < 20_000; i++) {
    const v = randomValue(r, 0);
    assert.equal(canonicalJson(v), reference(v), JSON.stringify(v));
  }
});

test("canonicalJson sorts keys by UTF-16 code units and leaves undefined fields out", () => {
  assert.equal(canonicalJson({ b: 1, a: [undefined, { d: undefined, c: "é" }], A: null }), '{"A":null,"a":[null,{"c":"é"}],"b":1}');
  assert.equal(canonicalJson({ "\u{1F600}": 1, "\uFFFF": 2 }), '{"\u{1F600}":1,"\uFFFF":2}');
  assert.throws(() => canonicalJson({ x: Number.NaN }), /non-finite/);
});
