import assert from "node:assert/strict";
import { before, test } from "node:test";
import { nearDuplicates, signature } from "../../src/plan/near-duplicates.js";
import { initHashing } from "../../src/util/hash.js";

before(initHashing);

const words = (seed: number, n: number) => {
  let s = seed;
  return Array.from({ length: n }, () => `w${(s = (s * 1103515245 + 12345) % 2 ** 31) % 5000}`).join(" ");
};

test("near-identical texts are duplicates; unrelated texts are not", () => {
  const base = words(1, 200);
  const edited = base.replace(/^(\S+ \S+ \S+)/, "$1 inserted"); // one word added near the start
  const other = words(2, 200);
  const dup = nearDuplicates(
    [
      { id: "a", text: base },
      { id: "b", text: edited },
      { id: "c", text: other },
    ],
    0.85,
    3,
  );
  assert.equal(dup.get("b"), "a");
  assert.equal(dup.has("c"), false);
  assert.equal(dup.has("a"), false);
});

test("the threshold is respected: half-rewritten texts pass at 0.85 and match at 0.3", () => {
  const base = words(3, 200);
  const half = base.split(" ").slice(0, 100).join(" ") + " " + words(4, 100);
  const texts = [
    { id: "a", text: base },
    { id: "b", text: half },
  ];
  assert.equal(nearDuplicates(texts, 0.85, 3).size, 0);
  assert.equal(nearDuplicates(texts, 0.3, 3).get("b"), "a");
});

test("signatures are deterministic and short texts still get one", () => {
  assert.deepEqual(signature("one two", 3), signature("one two", 3));
  assert.notDeepEqual(signature("one two", 3), signature("two one", 3));
});
