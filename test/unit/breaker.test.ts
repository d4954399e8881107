import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Breaker } from "../../src/execute/breaker.js";
import { TimeBudget } from "../../src/execute/time-budget.js";
import { NoResponse, RequestError } from "../../src/providers/types.js";

// Times are plain numbers handed in: no clock is read.
describe("the breaker", () => {
  test("a dead endpoint: opens at the first silence after 2 s, with 3 in a row", () => {
    const b = new Breaker();
    b.attempt(0);
    assert.equal(b.silent(5), false);
    assert.equal(b.silent(6), false);
    assert.equal(b.silent(7), false, "3 in a row, but only 7 ms: a server still starting");
    assert.equal(b.silent(1_999), false);
    assert.equal(b.silent(2_000), true);
    assert.deepEqual(b.silence(2_000), { ms: 2_000, failures: 5, everAnswered: false });
  });

  test("time alone does not open it: one slow request that timed out", () => {
    const b = new Breaker();
    b.attempt(0);
    assert.equal(b.silent(120_000), false);
    assert.equal(b.silent(240_000), false);
    assert.equal(b.silent(360_000), true);
  });

  test("a flaky endpoint: any response starts the count again", () => {
    const b = new Breaker();
    b.attempt(0);
    let t = 0;
    for (let i = 0; i < 50; i++) {
      assert.equal(b.silent((t += 100)), false);
      assert.equal(b.silent((t += 100)), false);
      b.heard((t += 100));
    }
  });

  test("once it has answered, it is given 30 s to come back", () => {
    const b = new Breaker();
    b.attempt(0);
    b.heard(1_000);
    for (const t of [1_100, 5_000, 20_000, 30_999]) assert.equal(b.silent(t), false, `at ${t}`);
    assert.equal(b.silent(31_000), true);
    assert.equal(b.silence(31_000).everAnswered, true);
  });
});

describe("a request's time budget", () => {
  const timeout = () => new NoResponse("timed out", "timeout", "no answer");

  test("each attempt gets timeout_s, the last what is left of total_timeout_s", () => {
    const t = new TimeBudget(400, 1_000);
    assert.equal(t.nextTimeoutMs(), 400);
    assert.ok((t.charge(400, timeout()) as RequestError).retryable);
    assert.equal(t.nextTimeoutMs(), 400);
    assert.ok((t.charge(400, timeout()) as RequestError).retryable);
    assert.equal(t.nextTimeoutMs(), 200);
    const last = t.charge(200, timeout()) as RequestError;
    assert.equal(last.retryable, false);
    assert.equal(last.message, "timed out; model.total_timeout_s (1 s) is used up");
  });

  test("errors that are final anyway are passed on as they are", () => {
    const t = new TimeBudget(400, 500);
    const final = new RequestError("HTTP 400: bad", false, 400);
    assert.equal(t.charge(600, final), final);
  });
});
