import assert from "node:assert/strict";
import { test } from "node:test";
import type { FilterStep, MapStep } from "../../src/manifest/types.js";
import { applyMap, dedupeKey, filterReason } from "../../src/plan/transforms.js";
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
  assert.equal(filterReason(filter({ minChars: 5 }), "abcdef", false), undefined);
  assert.match(filterReason(filter({ minChars: 10 }), "abc", false)!, /3 chars, fewer than 10/);
  assert.match(filterReason(filter({ maxChars: 2 }), "abc", false)!, /more than 2/);
  assert.match(filterReason(filter({ mustMatch: [/PLOT/] }), "abc", false)!, /does not match/);
  assert.match(filterReason(filter({ mustNotMatch: [/as an AI/i] }), "As an AI, I", false)!, /matches/);
  assert.match(filterReason(filter({ dropTruncated: true }), "abc", true)!, /cut off/);
  assert.equal(filterReason(filter({}), "abc", true), undefined);
});

test("dedupe keys ignore case and whitespace when asked", () => {
  assert.equal(dedupeKey("  Hello\n\nWorld ", true, true), dedupeKey("hello world", true, true));
  assert.notEqual(dedupeKey("Hello", false, true), dedupeKey("hello", false, true));
});
