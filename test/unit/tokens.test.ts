import assert from "node:assert/strict";
import { test } from "node:test";
import { countTokens } from "gpt-tokenizer";
import { boundedCounter, MAX_RUN } from "../../src/plan/tokens.js";

/** A counter that records what it is asked to count: the work the tokenizer would do. */
function spy() {
  const pieces: string[] = [];
  const count = boundedCounter((s) => {
    pieces.push(s);
    return countTokens(s);
  });
  return { count, pieces };
}

test("ordinary text is counted whole, exactly as the tokenizer counts it", () => {
  const texts = [
    "Imagine a complete and detailed plot outline for a science fiction film set in Kyōto.",
    `${"The quick brown fox jumps over the lazy dog. ".repeat(400)}\n\n  indented\tand tabbed`,
    "Ünïcödé, emoji 😀🎬 and 漢字, 1234567890, https://example.com/a/b?c=d",
    "",
  ];
  for (const t of texts) {
    const { count, pieces } = spy();
    assert.equal(count(t), countTokens(t));
    assert.deepEqual(pieces, [t]);
  }
});

test("a long run of one character is counted in bounded pieces (linear work), within 1% of the exact count", () => {
  // The tokenizer merges each word in time quadratic in its length: this bounds the length.
  const cases = ["a".repeat(4000), " ".repeat(3000), "-".repeat(3000), `intro ${"z".repeat(3000)} outro`, "😀".repeat(1500)];
  for (const t of cases) {
    const { count, pieces } = spy();
    const n = count(t);
    assert.ok(Math.max(...pieces.map((p) => p.length)) <= MAX_RUN, "no piece longer than MAX_RUN");
    assert.equal(pieces.join(""), t, "every character counted once");
    const exact = countTokens(t);
    assert.ok(Math.abs(n - exact) <= exact * 0.01 + 1, `${n} vs exact ${exact}`);
  }
  const { count, pieces } = spy();
  count("x".repeat(1_000_000));
  assert.ok(pieces.length <= Math.ceil(1_000_000 / MAX_RUN), `${pieces.length} pieces for 1 MB`);
});
