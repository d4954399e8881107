import assert from "node:assert/strict";
import { test } from "node:test";
import { dropReason, isRetryableEmpty } from "../../src/plan/answer-drops.js";

test("answers a generate step cannot use, and why", () => {
  assert.equal(dropReason({ text: "Sorry,\n  I can't.", finishReason: "refusal" }), "the model refused: Sorry, I can't.");
  assert.equal(
    dropReason({ text: "partial", finishReason: "content_filter" }),
    "the endpoint's content filter stopped the answer (finish_reason content_filter)",
  );
  assert.equal(dropReason({ text: " \n", finishReason: "stop" }), "empty answer");
  assert.equal(dropReason({ text: "", finishReason: "length" }), "empty answer (max_tokens ran out before any text)");
  assert.equal(dropReason({ text: "an answer", finishReason: "stop" }), undefined);
  assert.equal(dropReason({ text: "cut off", finishReason: "length" }), undefined, "truncation is the filter's to judge");
});

test("on_empty: retry asks again for an empty answer, never for the model's verdicts", () => {
  assert.equal(isRetryableEmpty({ text: "", finishReason: "stop" }), true);
  assert.equal(isRetryableEmpty({ text: "", finishReason: "content_filter" }), false);
  assert.equal(isRetryableEmpty({ text: "", finishReason: "refusal" }), false);
  assert.equal(isRetryableEmpty({ text: "x", finishReason: "stop" }), false);
});
