import assert from "node:assert/strict";
import { test } from "node:test";
import { hash128, initHashing } from "../../src/util/hash.js";
import { KeySet } from "../../src/util/key-set.js";

test("KeySet agrees with a Set of strings: cache keys, repeats, near misses and keys of another shape", async () => {
  await initHashing();
  const keys = Array.from({ length: 20_000 }, (_, i) => hash128(`k${i % 15_000}`));
  // Keys that differ from one another in a single word, and strings that are not cache keys.
  const base = hash128("base");
  for (let w = 0; w < 4; w++) keys.push(base.slice(0, 8 * w) + "00000000" + base.slice(8 * w + 8));
  keys.push(base, base, "not a key", "not a key", base.toUpperCase(), "");
  const set = new KeySet();
  const plain = new Set<string>();
  for (const k of keys) {
    assert.equal(set.add(k), !plain.has(k), k);
    plain.add(k);
  }
  assert.equal(set.size, plain.size);
});
