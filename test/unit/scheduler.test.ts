import assert from "node:assert/strict";
import { afterEach, beforeEach, mock, test } from "node:test";
import { RetriesExhausted, Scheduler } from "../../src/execute/scheduler.js";
import type { StatedLimits } from "../../src/providers/rate-headers.js";
import { RequestError } from "../../src/providers/types.js";

// Time is mocked: setTimeout (which node:timers/promises uses) and Date. setImmediate is real, so
// `flush` lets every promise chain that can move, move, before the clock advances.
beforeEach(() => mock.timers.enable({ apis: ["setTimeout", "Date"], now: 1_000_000 }));
afterEach(() => mock.timers.reset());

const flush = async () => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};
/** Advance the mocked clock in steps of `step` ms until `p` settles (or `maxMs` pass); returns the ms it took. */
async function settle<T>(p: Promise<T>, maxMs = 600_000, step = 1): Promise<number> {
  const t0 = Date.now();
  let done = false;
  p.then(
    () => (done = true),
    () => (done = true),
  );
  await flush();
  while (!done && Date.now() - t0 < maxMs) {
    mock.timers.tick(step);
    await flush();
  }
  assert.ok(done, `still running after ${maxMs} ms of mocked time`);
  return Date.now() - t0;
}
const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

const scheduler = (o: Partial<ConstructorParameters<typeof Scheduler>[0]> = {}) =>
  new Scheduler({ concurrency: 4, retries: 3, signal: new AbortController().signal, backoffMs: 5, maxBackoffMs: 20, ...o });

const limitsOf = (r: { limits?: StatedLimits } | undefined) => r?.limits;

/** An endpoint that answers after `latencyMs` and refuses (at once, 429, no retry-after) beyond `k` in flight. */
function concurrencyLimited(k: number, latencyMs: number) {
  let inFlight = 0;
  const stats = { refused: 0, answered: 0, maxInFlight: 0 };
  const call = async () => {
    if (inFlight >= k) {
      stats.refused++;
      throw new RequestError("HTTP 429: too many requests in flight", true, 429);
    }
    inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, inFlight);
    await wait(latencyMs);
    inFlight--;
    stats.answered++;
  };
  return { call, stats };
}

test("never more requests in flight than the concurrency", async () => {
  const s = scheduler({ concurrency: 3 });
  let inFlight = 0;
  let max = 0;
  const all = Promise.all(
    Array.from({ length: 20 }, () =>
      s.run(async () => {
        max = Math.max(max, ++inFlight);
        await wait(5);
        inFlight--;
      }),
    ),
  );
  await settle(all);
  assert.equal(max, 3);
});

test("rpm spaces starts evenly, and no second holds more than its share even when timers fire late", async () => {
  const s = scheduler({ concurrency: 50, rpm: 6000 }); // 100 a second, one every 10 ms
  const starts: number[] = [];
  const all = Promise.all(Array.from({ length: 300 }, () => s.run(async () => void starts.push(Date.now()))));
  // A coarse clock: every timer fires up to 7 ms late, as on a busy event loop.
  const took = await settle(all, 60_000, 7);
  starts.sort((a, b) => a - b);
  for (let i = 100; i < starts.length; i++)
    assert.ok(starts[i]! - starts[i - 100]! >= 1000, `starts ${i - 100} and ${i} are ${starts[i]! - starts[i - 100]!} ms apart: 101 in one second`);
  assert.ok(took <= 3000 * 1.05, `300 starts at 100/s took ${took} ms`);
});

test("a retryable error is retried with backoff; a final one is not", async () => {
  const s = scheduler();
  let calls = 0;
  const ok = s.run(async () => {
    if (++calls < 3) throw new RequestError("HTTP 500", true, 500);
    return "ok";
  });
  await settle(ok);
  assert.equal(await ok, "ok");
  assert.equal(calls, 3);
  let finalCalls = 0;
  const final = s.run(async () => {
    finalCalls++;
    throw new RequestError("HTTP 400: bad", false, 400);
  });
  await settle(final);
  await assert.rejects(final, (e: unknown) => e instanceof RetriesExhausted && e.attempts.length === 1);
  assert.equal(finalCalls, 1);
});

test("retries stop at the budget and carry every attempt", async () => {
  const s = scheduler({ retries: 2 });
  let calls = 0;
  const p = s.run(async () => {
    calls++;
    throw new RequestError(`HTTP 503 #${calls}`, true, 503);
  });
  await settle(p);
  await assert.rejects(p, (e: unknown) => e instanceof RetriesExhausted && e.attempts.length === 3 && /after 3 attempts/.test(e.message));
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
  await settle(wait(20));
  const second = s.run(async () => void starts.push(Date.now() - t0));
  await settle(Promise.all([first, second]));
  assert.equal(starts.length, 2);
  assert.ok(
    starts.every((t) => t >= 150),
    `requests started at ${starts.join(", ")} ms, before the 150 ms retry-after`,
  );
});

test("retry-after is capped at 60 s, as the openai SDK caps it", async () => {
  const s = scheduler();
  let calls = 0;
  const p = s.run(async () => {
    if (++calls === 1) throw new RequestError("HTTP 429", true, 429, 3_600_000);
  });
  const took = await settle(p, 120_000, 100);
  assert.ok(took >= 60_000 && took <= 61_000, `the retry came after ${took} ms`);
});

test("several 429s of one congestion event cut the concurrency once, not once each", async () => {
  const s = scheduler({ concurrency: 64 });
  let retried = 0;
  const all = Promise.all(
    Array.from({ length: 64 }, () => {
      let tries = 0;
      // The whole first burst is refused together; every retry is answered.
      return s.run(async () => {
        await wait(1);
        if (tries++ === 0) throw new RequestError("HTTP 429", true, 429);
        retried++;
      });
    }),
  );
  await settle(all);
  assert.equal(retried, 64);
  // One cut, to three quarters (48), and 64 answers win one slot back: not 64 → 1.
  assert.equal(s.effectiveConcurrency, 49);
});

test("a server allowing 3 in flight: the limit settles at 3, and throughput is near 3 / latency", async () => {
  const s = scheduler({ concurrency: 64, retries: 6 });
  const server = concurrencyLimited(3, 200);
  const n = 60;
  const all = Promise.all(Array.from({ length: n }, () => s.run(server.call)));
  const took = await settle(all, 60_000);
  assert.equal(server.stats.answered, n, "every request answered: none ran out of retries");
  const ideal = (n * 200) / 3;
  assert.ok(ideal / took >= 0.9, `took ${took} ms, ideal ${ideal} ms (${(ideal / took).toFixed(2)})`);
  assert.ok(s.effectiveConcurrency >= 3 && s.effectiveConcurrency <= 4, `limit ended at ${s.effectiveConcurrency}`);
});

test("successes win a cut slot back, one per round trip's worth of answers", async () => {
  const s = scheduler({ concurrency: 8 });
  let first = true;
  const p = s.run(async () => {
    if (first) {
      first = false;
      throw new RequestError("HTTP 429", true, 429);
    }
  });
  await settle(p);
  assert.equal(s.effectiveConcurrency, 6);
  for (let i = 0; i < 20; i++) await settle(s.run(async () => {}));
  assert.equal(s.effectiveConcurrency, 8);
});

test("with no rpm declared, the limit the endpoint states paces the starts", async () => {
  const s = scheduler({ concurrency: 16 });
  const starts: number[] = [];
  const limits: StatedLimits = { rpm: 600, remainingRequests: 500 };
  await settle(s.run(async () => ({ limits }), 0, undefined, limitsOf));
  assert.equal(s.pacedRpm, 600);
  const all = Promise.all(Array.from({ length: 11 }, () => s.run(async () => (starts.push(Date.now()), { limits }), 0, undefined, limitsOf)));
  await settle(all);
  starts.sort((a, b) => a - b);
  assert.ok(starts[10]! - starts[0]! >= 1000, `11 starts at 600 rpm spanned ${starts[10]! - starts[0]!} ms`);
});

test("a burst sent before the limit was known is refused without slowing the pace that follows", async () => {
  const s = scheduler({ concurrency: 20, retries: 1 });
  const admitted: number[] = [];
  let known = false;
  const call = async () => {
    const now = Date.now();
    const inWindow = admitted.filter((t) => t > now - 1000).length;
    if (inWindow >= 5) {
      known = true;
      throw new RequestError("HTTP 429", true, 429, undefined, { rpm: 300, remainingRequests: 0 });
    }
    admitted.push(now);
    await wait(200);
    return { limits: known ? { rpm: 300, remainingRequests: 200 } : undefined };
  };
  const all = Promise.all(Array.from({ length: 30 }, () => s.run(call, 0, undefined, limitsOf)));
  const took = await settle(all, 60_000);
  assert.equal(admitted.length, 30, "every request answered: a 429 while others are answered does not use the retry budget");
  assert.equal(s.pacedRpm, 300, "the refusals of the first burst are not congestion of the pace");
  // 5 at once, then one every 200 ms from when the first second is over.
  assert.ok(took <= 1000 + 25 * 200 + 200 + 100, `took ${took} ms`);
});

test("429s while paced at the rate slow the pace once per event; answers win it back", async () => {
  const s = scheduler({ concurrency: 8, rpm: 600, retries: 3 });
  let refuse = 3;
  const call = async () => {
    if (refuse-- > 0) throw new RequestError("HTTP 429", true, 429, undefined, { rpm: 600, remainingRequests: 0 });
    await wait(50);
  };
  await settle(Promise.all(Array.from({ length: 6 }, () => s.run(call))));
  assert.ok(s.pacedRpm! < 600, `paced at ${s.pacedRpm}`);
  assert.ok(s.pacedRpm! >= 600 * 0.95 ** 2, `three refusals of one burst cut more than once: ${s.pacedRpm}`);
  await settle(Promise.all(Array.from({ length: 200 }, () => s.run(call))));
  assert.equal(s.pacedRpm, 600);
});

test("a rate-limited request never runs out of retries while the endpoint answers others", async () => {
  const s = scheduler({ concurrency: 2, retries: 1 });
  let refusals = 0;
  const starved = s.run(async () => {
    if (refusals++ < 10) throw new RequestError("HTTP 429", true, 429, 100);
  });
  const others = (async () => {
    for (let i = 0; i < 12; i++) await s.run(() => wait(100));
  })();
  await settle(Promise.all([starved, others]));
  assert.equal(refusals, 11, "retried until it got through");
});

test("a 429 counts against the retries when nothing has been answered for the progress window", async () => {
  const s = scheduler({ concurrency: 2, retries: 2, progressWindowMs: 1000 });
  let calls = 0;
  const p = s.run(async () => {
    calls++;
    throw new RequestError("HTTP 429", true, 429, 2000);
  });
  await settle(p, 60_000, 10);
  await assert.rejects(p, RetriesExhausted);
  assert.equal(calls, 3);
});

test("a stated remaining of 0 holds the next start until a request's worth is back", async () => {
  const s = scheduler({ concurrency: 4 });
  await settle(s.run(async () => ({ limits: { rpm: 60, remainingRequests: 0, resetRequestsMs: 30_000 } }), 0, undefined, limitsOf));
  const t0 = Date.now();
  await settle(s.run(async () => ({})));
  assert.ok(Date.now() - t0 >= 1000, `the next start came after ${Date.now() - t0} ms; 60 rpm refills one a second`);
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
    await settle(
      s.run(
        async () => void starts.push(Date.now() - t0),
        100,
        () => 10,
      ),
    );
  // Without the correction the fourth could not start before 300 ms (three 100-token estimates at 1 token/ms).
  assert.ok(starts[3]! < 250, `fourth start at ${starts[3]} ms: usage did not correct the estimate`);
  const s2 = scheduler({ concurrency: 10, tpm: 60_000 });
  const t1 = Date.now();
  const starts2: number[] = [];
  await settle(Promise.all(Array.from({ length: 3 }, () => s2.run(async () => void starts2.push(Date.now() - t1), 50))));
  starts2.sort((a, b) => a - b);
  assert.ok(starts2[2]! >= 100, `third start at ${starts2[2]} ms; 50-token requests at 1 token/ms must be 50 ms apart`);
});
