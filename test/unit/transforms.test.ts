import assert from "node:assert/strict";
import { test } from "node:test";
import type { FilterStep, MapStep } from "../../src/manifest/types.js";
import { applyMap, dedupeKey, filterReason } from "../../src/plan/transforms.js";
import { Structured } from "../../src/template/structured.js";
import { compileWhere } from "../../src/template/where.js";
import { canonicalJson } from "../../src/util/canonical-json.js";

const map = (o: Partial<MapStep>): MapStep => ({ kind: "map", id: "m", index: 0, defHash: "", parts: {}, field: "f", replace: [], trim: false, ...o });
const filter = (o: Partial<FilterStep>): FilterStep => ({
  kind: "filter",
  id: "f",
  index: 0,
  defHash: "",
  parts: {},
  field: "x",
  mustMatch: [],
  mustNotMatch: [],
  dropTruncated: false,
  ...o,
});

test("canonical JSON sorts keys at every depth and drops undefined", () => {
  assert.equal(canonicalJson({ b: 1, a: { d: [1, { z: 1, y: 2 }], c: undefined } }), '{"a":{"d":[1,{"y":2,"z":1}]},"b":1}');
  assert.equal(canonicalJson({ x: 1, y: 2 }), canonicalJson({ y: 2, x: 1 }));
  assert.throws(() => canonicalJson({ x: NaN }));
});

test("map: extract fenced, extract JSON, replace, trim in that order", () => {
  assert.deepEqual(applyMap(map({ extract: "fenced" }), "Here:\n```python\nprint(1)\n```\nbye"), { text: "print(1)" });
  assert.deepEqual(applyMap(map({ extract: "json" }), 'Sure! {"a": [1, "}"], "b": {"c": 2}} hope that helps'), { text: '{"a":[1,"}"],"b":{"c":2}}' });
  assert.deepEqual(applyMap(map({ extract: "json" }), "```json\n[1, 2]\n```"), { text: "[1,2]" });
  assert.deepEqual(applyMap(map({ extract: "json" }), "no json here {oops"), { drop: "no JSON value in f" });
  assert.deepEqual(applyMap(map({ extract: "fenced" }), "just prose"), { drop: "no fenced code block in f" });
  assert.deepEqual(applyMap(map({ replace: [{ pattern: /\n{3,}/g, with: "\n\n" }], trim: true }), "  a\n\n\n\nb  "), { text: "a\n\nb" });
});

test("filter: each rule gives a reason, a passing text none", () => {
  assert.equal(filterReason(filter({ minChars: 5 }), { x: "abcdef" }, undefined), undefined);
  assert.match(filterReason(filter({ minChars: 10 }), { x: "abc" }, undefined)!, /3 chars, fewer than 10/);
  assert.match(filterReason(filter({ maxChars: 2 }), { x: "abc" }, undefined)!, /more than 2/);
  assert.match(filterReason(filter({ mustMatch: [/PLOT/] }), { x: "abc" }, undefined)!, /does not match/);
  assert.match(filterReason(filter({ mustNotMatch: [/as an AI/i] }), { x: "As an AI, I" }, undefined)!, /matches/);
  assert.match(filterReason(filter({ dropTruncated: true }), { x: "abc" }, new Set(["x"]))!, /cut off/);
  assert.equal(filterReason(filter({}), { x: "abc" }, new Set(["x"])), undefined);
});

test("filter where: a condition over the sample's variables, JSON fields typed", () => {
  const where = (source: string) => filter({ field: undefined, where: compileWhere(source) });
  const judged = { judge: '{"score": 4, "tags": ["a"], "nested": {"ok": true}}', story: "four words in here", genre: "noir" };
  assert.equal(filterReason(where("judge.score >= 4 and words(story) == 4"), judged, undefined), undefined);
  assert.equal(filterReason(where('judge.nested.ok and genre in ("noir", "pulp") and len(judge.tags) == 1'), judged, undefined), undefined);
  assert.equal(filterReason(where('lower(genre) ~= "^no" and not contains(story, "five")'), judged, undefined), undefined);
  assert.equal(filterReason(where("judge.score > 4"), judged, undefined), "where judge.score > 4 is false (judge.score = 4)");
  assert.equal(filterReason(where("judge.missing > 1"), judged, undefined), "where judge.missing > 1: judge.missing is missing");
  assert.equal(filterReason(where("not exists(judge.missing) and exists(judge.score)"), judged, undefined), undefined);
  // Dimension values are text: a number in text compares as that number.
  assert.equal(filterReason(where('n > 1 and n == 2 and n == "2" and m != 2'), { n: "2", m: "two" }, undefined), undefined);
  assert.equal(filterReason(where("m > 1"), { m: "two" }, undefined), 'where m > 1: "two" is not a number');
  // A name a bare name cannot spell (a step id with -) in single quotes.
  assert.equal(filterReason(where("'my-judge.score' >= 4"), { "my-judge": '{"score": 4}' }, undefined), undefined);
  // Only a value's own fields: nothing of JavaScript's objects is reachable.
  assert.equal(filterReason(where("judge.constructor"), judged, undefined), "where judge.constructor is false (judge.constructor = missing)");
  assert.equal(filterReason(where("genre.length > 0"), judged, undefined), "where genre.length > 0: genre.length is missing");
  assert.deepEqual(compileWhere("if a > 1 then b else c.d").names, ["a", "b", "c"]);
  assert.deepEqual(compileWhere('x == true or y == null or "index" == z').names, ["x", "y", "z"]);
  // A row of a rows dimension or an answer parsed for its fields: the same paths, the same text.
  const row = new Structured('{"q":"why?","level":3}', { q: "why?", level: 3 }, "row");
  assert.equal(filterReason(where('seed.level >= 3 and len(seed.q) == 4 and contains(seed, "why")'), { seed: row }, undefined), undefined);
  assert.equal(filterReason(where("seed.level > 3"), { seed: row }, undefined), "where seed.level > 3 is false (seed.level = 3)");
  // Both tests in one filter: the field's first.
  assert.match(filterReason(filter({ minChars: 100, where: compileWhere("judge.score > 9") }), { x: "short", ...judged }, undefined)!, /fewer than 100/);
});

test("dedupe keys ignore case and whitespace when asked", () => {
  assert.equal(dedupeKey("  Hello\n\nWorld ", true, true), dedupeKey("hello world", true, true));
  assert.notEqual(dedupeKey("Hello", false, true), dedupeKey("hello", false, true));
});
