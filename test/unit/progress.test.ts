import assert from "node:assert/strict";
import { test } from "node:test";
import { createProgress } from "../../src/cli/progress.js";

test("without a terminal, progress is a plain line every interval and a summary at the end", async () => {
  const lines: string[] = [];
  const p = createProgress({ quiet: false, write: (l) => lines.push(l), intervalMs: 20 });
  p.planned?.(3);
  p.answered?.({ step: "s", inputTokens: 10, outputTokens: 20, costUsd: 0.001 });
  p.retried?.({ step: "s", attempt: 1, delayMs: 5, reason: "HTTP 429" });
  await new Promise((r) => setTimeout(r, 50));
  p.failed?.({ sample: "abc", step: "s", reason: "HTTP 400: no" });
  p.answered?.({ step: "s", inputTokens: 10, outputTokens: 20, costUsd: 0.001 });
  p.stop();
  assert.equal(lines[0], "3 requests to make");
  assert.ok(
    lines.some((l) => /^1\/3 requests .* tokens 10 in \/ 20 out {2}\$0\.0010 .* retries 1/.test(l)),
    lines.join("\n"),
  );
  assert.ok(
    lines.some((l) => l === "sample abc failed at s: HTTP 400: no"),
    lines.join("\n"),
  );
  assert.match(lines[lines.length - 1]!, /^3\/3 requests .* tokens 20 in \/ 40 out {2}\$0\.0020 .* retries 1 {2}failed 1$/);
});

test("--quiet prints nothing but warnings", () => {
  const lines: string[] = [];
  const p = createProgress({ quiet: true, write: (l) => lines.push(l) });
  p.planned?.(3);
  p.answered?.({ step: "s", inputTokens: 1, outputTokens: 1, costUsd: null });
  p.warn?.("cache entry x was corrupt");
  p.stop();
  assert.deepEqual(lines, ["warning: cache entry x was corrupt"]);
});
