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

test("the first frame has no NaN; a build that is only retrying says why and when it tries next", (t) => {
  t.mock.timers.enable({ apis: ["setInterval", "Date"], now: 5_000 });
  const lines: string[] = [];
  const p = createProgress({ quiet: false, write: (l) => lines.push(l), intervalMs: 1000 });
  p.planned?.(2);
  t.mock.timers.tick(0);
  p.retried?.({ step: "s", attempt: 1, delayMs: 12_000, reason: "HTTP 429: Rate limit reached for requests" });
  t.mock.timers.tick(1000);
  p.stop();
  assert.ok(!lines.some((l) => l.includes("NaN")), lines.join("\n"));
  assert.match(lines[1]!, /^0\/2 requests {2}0\.0 req\/s .* retrying: HTTP 429: Rate limit reached for requests, next attempt in 11s$/);
  // A frame drawn the moment the bar starts (no time elapsed yet) divided 0 by 0.
  const first: string[] = [];
  const q = createProgress({ quiet: false, write: (l) => first.push(l), intervalMs: 1000 });
  q.planned?.(2);
  q.stop();
  assert.match(first[1]!, /^0\/2 requests {2}0\.0 req\/s/);
});

test("an answer ends the retrying note; a failure's paid answers count in tokens and cost", (t) => {
  t.mock.timers.enable({ apis: ["setInterval", "Date"], now: 5_000 });
  const lines: string[] = [];
  const p = createProgress({ quiet: false, write: (l) => lines.push(l), intervalMs: 1000 });
  p.planned?.(2);
  p.retried?.({ step: "s", attempt: 1, delayMs: 500, reason: "answer is not JSON" });
  p.failed?.({ sample: "a", step: "s", reason: "answer is not JSON (after 2 attempts)", inputTokens: 10, outputTokens: 30, costUsd: 0.004 });
  p.answered?.({ step: "s", inputTokens: 5, outputTokens: 15, costUsd: 0.002 });
  p.stop();
  const last = lines[lines.length - 1]!;
  assert.match(last, /tokens 15 in \/ 45 out {2}\$0\.0060/);
  assert.ok(!last.includes("retrying"), last);
});
