import assert from "node:assert/strict";
import { test } from "node:test";
import { RetriesExhausted, Scheduler } from "../../src/execute/scheduler.js";
import { RequestError } from "../../src/providers/types.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const scheduler = (o: Partial<ConstructorParameters<typeof Scheduler>[0]> = {}) =>
  new Scheduler({ concurrency: 4, retries: 3, signal: new AbortController().signal, backoffMs: 5, maxBackoffMs: 20, ...o });

test("never more requests in flight than the concurrency", async () => {
  const s = scheduler({ concurrency: 3 });
  let inFlight = 0;
  let max = 0;
  await Promise.all(
    Array.from({ length: 20 }, () =>
      s.run(async () => {
        max = Math.max(max, ++inFlight);
        await sleep(5);
        inFlight--;
      }),
    ),
  );
  assert.equal(max, 3);
});

test("rpm spaces request starts evenly", async () => {
  const s = scheduler({ concurrency: 50, rpm: 60_000 / 20 }); // one start every 20 ms
  const starts: number[] = [];
  const t0 = Date.now();
  await Promise.all(Array.from({ length: 6 }, () => s.run(async () => void starts.push(Date.now()))));
  starts.sort((a, b) => a - b);
  // Slots are reserved 20 ms apart from the first; a busy event loop can only start a request
  // late, never early, so the sixth starts at least five intervals after the calls were made.
  assert.ok(starts[5]! - t0 >= 98, `the sixth start came ${starts[5]! - t0} ms after the first call`);
});

test("a retryable error is retried with backoff; a final one is not", async () => {
  const s = scheduler();
  let calls = 0;
  const r = await s.run(async () => {
    if (++calls < 3) throw new RequestError("HTTP 500", true, 500);
    return "ok";
  });
  assert.equal(r, "ok");
  assert.equal(calls, 3);
  let finalCalls = 0;
  await assert.rejects(
    s.run(async () => {
      finalCalls++;
      throw new RequestError("HTTP 400: bad", false, 400);
    }),
    (e: unknown) => e instanceof RetriesExhausted && e.attempts.length === 1,
  );
  assert.equal(finalCalls, 1);
});

test("retries stop at the budget and carry every attempt", async () => {
  const s = scheduler({ retries: 2 });
  let calls = 0;
  await assert.rejects(
    s.run(async () => {
      calls++;
      throw new RequestError(`HTTP 503 #${calls}`, true, 503);
    }),
    (e: unknown) => e instanceof RetriesExhausted && e.attempts.length === 3 && /after 3 attempts/.test(e.message),
  );
  assert.equal(calls, 3);
});

test("retry-after is honoured, and pauses every start, not just the one refused", async () => {
  const s = scheduler({ concurrency: 8 });
  const t0 = Date.now();
  let refused = false;
  const starts: number[] = [];
  const first = s.run(async () => {
    if (!refused) {
      refused = true;
      throw new RequestError("HTTP 429", true, 429, 150);
    }
    starts.push(Date.now() - t0);
  });
  await sleep(20);
  const second = s.run(async () => void starts.push(Date.now() - t0));
  await Promise.all([first, second]);
  assert.ok(
    starts.every((t) => t >= 140),
    `requests started at ${starts.join(", ")} ms, before the 150 ms retry-after`,
  );
});

test("a 429 halves the effective concurrency and successes win it back", async () => {
  const s = scheduler({ concurrency: 8 });
  let first = true;
  await s.run(async () => {
    if (first) {
      first = false;
      throw new RequestError("HTTP 429", true, 429, 1);
    }
  });
  assert.equal(s.effectiveConcurrency, 4);
  for (let i = 0; i < 40; i++) await s.run(async () => {});
  assert.equal(s.effectiveConcurrency, 8);
});

test("an abort stops waiting requests and is never retried", async () => {
  const controller = new AbortController();
  const s = scheduler({ concurrency: 1, signal: controller.signal });
  const running = s.run(() => new Promise((_, reject) => controller.signal.addEventListener("abort", () => reject(new RequestError("aborted", false)))));
  let ran = false;
  const waiting = assert.rejects(
    s.run(async () => void (ran = true)),
    /aborted/,
  );
  const first = assert.rejects(running);
  controller.abort();
  await first;
  await waiting;
  assert.equal(ran, false, "a request waiting for a slot ran after the abort");
});

test("tpm paces by tokens and settles the estimate against real usage", async () => {
  const s = scheduler({ concurrency: 10, tpm: 60_000 }); // 1 token a millisecond
  const t0 = Date.now();
  const starts: number[] = [];
  // Estimated 100 tokens each, really 10: after the first, the budget is mostly given back.
  for (let i = 0; i < 4; i++)
    await s.run(
      async () => void starts.push(Date.now() - t0),
      100,
      () => 10,
    );
  // Without the correction the fourth could not start before 300 ms (three 100-token estimates at 1 token/ms).
  assert.ok(starts[3]! < 250, `fourth start at ${starts[3]} ms: usage did not correct the estimate`);
  const s2 = scheduler({ concurrency: 10, tpm: 60_000 });
  const t1 = Date.now();
  const starts2: number[] = [];
  await Promise.all(Array.from({ length: 3 }, () => s2.run(async () => void starts2.push(Date.now() - t1), 50)));
  starts2.sort((a, b) => a - b);
  assert.ok(starts2[2]! >= 90, `third start at ${starts2[2]} ms; 50-token requests at 1 token/ms must be 50 ms apart`);
});
