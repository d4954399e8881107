import assert from "node:assert/strict";
import { test } from "node:test";
import { whenIdle } from "../../src/util/when-idle.js";

const busyFor = (ms: number) => {
  const end = performance.now() + ms;
  while (performance.now() < end);
};

test("whenIdle waits out a busy loop, then calls once", async () => {
  const calls: number[] = [];
  const start = performance.now();
  whenIdle(() => calls.push(performance.now() - start));
  // Busy in 20 ms slices with a turn of the loop between: each check sees a loop nearly always busy.
  for (let i = 0; i < 5; i++) {
    busyFor(20);
    await new Promise((r) => setImmediate(r));
  }
  assert.deepEqual(calls, []);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(calls.length, 1);
  assert.ok(calls[0]! >= 100, `called at ${calls[0]} ms, while the loop was busy`);
});

test("whenIdle stops looking once it is no longer wanted", async () => {
  let called = false;
  let wanted = true;
  whenIdle(
    () => (called = true),
    () => wanted,
  );
  wanted = false;
  await new Promise((r) => setTimeout(r, 40));
  assert.equal(called, false);
});
