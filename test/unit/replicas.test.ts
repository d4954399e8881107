import assert from "node:assert/strict";
import { test } from "node:test";
import { Breaker } from "../../src/execute/breaker.js";
import { type Replica, ReplicaHealth, ReplicaOut, ReplicaSet } from "../../src/execute/replicas.js";
import { Diverted, RetriesExhausted, Scheduler } from "../../src/execute/scheduler.js";
import { parseManifest } from "../../src/manifest/load.js";
import type { GenerateStep, ModelConfig } from "../../src/manifest/types.js";
import type { Provider } from "../../src/providers/types.js";
import { NoResponse, RequestError } from "../../src/providers/types.js";

/** The parts of `model.endpoints:` that need no server: resolving the list, the routing rule, a replica's health, the scheduler's way out. */

const RULE = { failures: 3, afterMs: 1_000, maxMs: 4_000 };

function replica(url: string, concurrency: number, signal = new AbortController().signal): Replica {
  return {
    cfg: { baseUrl: url } as ModelConfig,
    provider: Promise.resolve({} as Provider),
    scheduler: new Scheduler({ concurrency, retries: 3, signal }),
    breaker: new Breaker(),
    health: new ReplicaHealth(url, RULE),
  };
}

/** Occupy `n` of a replica's slots with requests that never end. */
function occupy(r: Replica, n: number): void {
  for (let i = 0; i < n; i++) void r.scheduler.run(() => new Promise(() => {}));
}

test("each replica inherits the model's concurrency, limits, key and headers where it sets none", async () => {
  const m = await parseManifest(
    "dataset.yaml",
    "/nonexistent/dataset.yaml",
    `version: 1
name: r
model:
  name: tiny
  concurrency: 5
  rpm: 600
  api_key_env: POOL_KEY
  headers: { x-team: data }
  endpoint_id: lan
  endpoints:
    - http://10.0.0.1:8000/v1
    - { base_url: "http://10.0.0.2:8000/v1", concurrency: 2, tpm: 9000, api_key_env: OTHER_KEY, headers: { x-box: two } }
dimensions: { genre: [comedy] }
steps:
  - id: story
    generate: { prompt: "A {{ genre }} story." }
output: { path: dist/out.jsonl, prompt: "{{ genre }}", completion: "{{ story }}" }
`,
    {},
  );
  const model = (m.steps[0] as GenerateStep).model;
  assert.equal(model.endpoint, "lan");
  assert.equal(model.baseUrl, "http://10.0.0.1:8000/v1");
  assert.deepEqual(model.replicas, [
    { baseUrl: "http://10.0.0.1:8000/v1", concurrency: 5, rpm: 600, tpm: undefined, apiKeyEnv: "POOL_KEY", headers: { "x-team": "data" } },
    { baseUrl: "http://10.0.0.2:8000/v1", concurrency: 2, rpm: 600, tpm: 9000, apiKeyEnv: "OTHER_KEY", headers: { "x-team": "data", "x-box": "two" } },
  ]);
});

test("a step's base_url replaces the model's endpoints, and its endpoints the model's base_url", async () => {
  const { mergeModel } = await import("../../src/manifest/resolve-model.js");
  assert.deepEqual(mergeModel({ endpoints: ["http://a/v1", "http://b/v1"], endpoint_id: "x" }, { base_url: "http://c/v1" }), {
    endpoint_id: "x",
    base_url: "http://c/v1",
    params: {},
    headers: {},
    extra_body: {},
  });
  assert.deepEqual(mergeModel({ base_url: "http://c/v1" }, { endpoints: ["http://a/v1"] }), {
    endpoints: ["http://a/v1"],
    params: {},
    headers: {},
    extra_body: {},
  });
  assert.deepEqual(mergeModel({ endpoints: ["http://a/v1"] }, { name: "m" }), {
    endpoints: ["http://a/v1"],
    name: "m",
    params: {},
    headers: {},
    extra_body: {},
  });
});

test("routing: the least loaded per slot, ties to the first listed, untried first", () => {
  const [a, b, c] = [replica("http://a", 1), replica("http://b", 2), replica("http://c", 4)];
  const set = new ReplicaSet([a, b, c]);
  const none = new Set<Replica>();
  assert.equal(set.choose(none, 0), a, "all idle: the first listed");
  occupy(a, 1);
  assert.equal(set.choose(none, 0), b);
  occupy(b, 1); // b: 1/2, c: 0/4
  assert.equal(set.choose(none, 0), c);
  occupy(c, 2); // b: 1/2 = c: 2/4: the first listed of the two
  assert.equal(set.choose(none, 0), b);
  occupy(c, 1); // c: 3/4
  assert.equal(set.choose(none, 0), b);
  // A request that has tried b goes elsewhere, even to a busier replica.
  assert.equal(set.choose(new Set([b]), 0), c);
  // Tried them all: the least loaded again.
  assert.equal(set.choose(new Set([a, b, c]), 0), b);
});

test("a replica that fails 3 times in a row is out, probed once after its wait, and the wait doubles on a failed probe", () => {
  const h = new ReplicaHealth("http://a", RULE);
  assert.equal(h.failed(0), false);
  assert.equal(h.failed(1), false);
  assert.equal(h.usable(1), true);
  assert.equal(h.failed(2), true, "the third takes it out (and is said)");
  assert.equal(h.usable(500), false);
  assert.equal(h.isOut(500), true);
  assert.equal(h.retryInMs(500), 502);
  assert.equal(h.usable(1002), true, "due for its probe");
  h.chosen(1002);
  assert.equal(h.usable(1002), false, "one probe at a time");
  assert.equal(h.failed(1010), false, "a failed probe is not said again");
  assert.equal(h.usable(2500), false);
  assert.equal(h.usable(3010), true, "twice the wait");
  h.chosen(3010);
  assert.equal(h.responded(), true, "it had been out");
  assert.equal(h.usable(3011), true);
  assert.equal(h.failed(3012), false, "back in: the count starts again");
});

test("an out replica is skipped while another is usable; with all out, requests still go somewhere", () => {
  const [a, b] = [replica("http://a", 2), replica("http://b", 2)];
  const set = new ReplicaSet([a, b]);
  for (let i = 0; i < 3; i++) a.health.failed(0);
  assert.equal(set.choose(new Set(), 10), b);
  assert.equal(set.hasAlternative(a, 10), true);
  for (let i = 0; i < 3; i++) b.health.failed(0);
  assert.equal(set.hasAlternative(a, 10), false);
  assert.ok([a, b].includes(set.choose(new Set(), 10)));
  assert.equal(set.allLost, false, "out is not lost: only the breakers (or refusals) stop the build");
  a.health.down = true;
  b.health.down = true;
  assert.equal(set.allLost, true);
});

test("divert: a replica's failure moves on to an untried replica; a 429 only to one with room; a request's own error never", () => {
  const [a, b] = [replica("http://a", 1), replica("http://b", 1)];
  const set = new ReplicaSet([a, b]);
  const noResponse = new NoResponse("connection refused", "connect", "connection refused");
  assert.equal(set.divert(a, noResponse, new Set([a]), 0), true);
  assert.equal(set.divert(a, noResponse, new Set([a, b]), 0), false, "tried both: back off as with one endpoint");
  assert.equal(set.divert(a, new RequestError("HTTP 503", true, 503), new Set([a]), 0), true);
  assert.equal(set.divert(a, new RequestError("HTTP 400: bad prompt", false, 400), new Set([a]), 0), false);
  assert.equal(
    set.divert(a, new RequestError("HTTP 503; model.total_timeout_s (1 s) is used up", false, 503), new Set([a]), 0),
    false,
    "the request's own time is up",
  );
  assert.equal(set.divert(a, new RequestError("HTTP 429", true, 429), new Set([a]), 0), true);
  occupy(b, 1);
  assert.equal(set.divert(a, new RequestError("HTTP 429", true, 429), new Set([a]), 0), false, "b is full too: wait here");
  assert.equal(new ReplicaSet([a]).divert(a, noResponse, new Set([a]), 0), false, "one endpoint: nowhere to go");
});

test("the scheduler's way out: a diverted request carries its attempts, and a diverted 429 still cuts the concurrency", async () => {
  const s = new Scheduler({ concurrency: 4, retries: 3, signal: new AbortController().signal });
  const before = [new RequestError("elsewhere", true, 500)];
  await assert.rejects(
    s.run(
      async () => {
        throw new RequestError("HTTP 429: too many in flight", true, 429);
      },
      0,
      undefined,
      undefined,
      { attempts: before, divert: () => true },
    ),
    (e: unknown) => e instanceof Diverted && e.attempts.map((x) => x.message).join(",") === "elsewhere,HTTP 429: too many in flight",
  );
  assert.equal(s.effectiveConcurrency, 3);
  assert.equal(s.load, 0, "its slot given back");
});

test("two replicas failing 503 by turns: a request fails after its retries, not moving between them without end", async () => {
  const signal = new AbortController().signal;
  const flapping = (url: string): Replica => ({
    ...replica(url, 2, signal),
    scheduler: new Scheduler({ concurrency: 2, retries: 3, signal, backoffMs: 1, maxBackoffMs: 2 }),
    // Out after 2 failures, back 3 ms later: each goes out while the other comes back.
    health: new ReplicaHealth(url, { failures: 2, afterMs: 3, maxMs: 3 }),
  });
  const [a, b] = [flapping("http://a"), flapping("http://b")];
  const set = new ReplicaSet([a, b]);
  let sent = 0;
  // As the resolver's attempt: a request queued at a replica gone out moves on unsent; a 503 is the replica's failure.
  const attempt = (r: Replica) => async (): Promise<never> => {
    if (r.health.isOut(Date.now()) && set.hasAlternative(r, Date.now())) throw new ReplicaOut();
    if (++sent > 100) throw new RequestError("unbounded: 100 attempts sent", false);
    await new Promise((res) => setTimeout(res, 2));
    r.health.failed(Date.now());
    throw new RequestError("HTTP 503", true, 503);
  };
  await assert.rejects(
    set.route((r, route) => r.scheduler.run(attempt(r), 0, undefined, undefined, route)),
    (e: unknown) => e instanceof RetriesExhausted && e.message.includes("HTTP 503"),
  );
  // retries: 3 counted over both replicas, and one uncounted move to the untried one.
  assert.ok(sent <= 5, `${sent} attempts sent`);
});

test("a probe whose request never goes out (held back, the build stopping) leaves the replica due for the next probe", async () => {
  const a: Replica = { ...replica("http://a", 2), health: new ReplicaHealth("http://a", { failures: 1, afterMs: 1, maxMs: 1 }) };
  const set = new ReplicaSet([a]);
  a.health.failed(Date.now());
  await new Promise((r) => setTimeout(r, 5));
  assert.equal(a.health.usable(Date.now()), true, "due for its probe");
  // The probe's request ends before any attempt is sent.
  await assert.rejects(
    set.send(new Set(), () => Promise.reject(new RequestError("held back by --max-cost", false))),
    /held back/,
  );
  assert.equal(a.health.usable(Date.now()), true, "no probe is under way: the next request is it");
  // A probe that ends late does not clear a later one.
  const first = a.health.chosen(Date.now());
  a.health.failed(Date.now());
  await new Promise((r) => setTimeout(r, 5));
  const second = a.health.chosen(Date.now());
  a.health.probeEnded(first);
  assert.equal(a.health.usable(Date.now()), false, "the second probe is still under way");
  a.health.probeEnded(second);
  assert.equal(a.health.usable(Date.now()), true);
});

test("every replica busy: a request waits for the first slot to free anywhere, not in one replica's queue", async () => {
  const [a, b] = [replica("http://a", 1), replica("http://b", 1)];
  const set = new ReplicaSet([a, b]);
  let finishB!: () => void;
  void a.scheduler.run(() => new Promise(() => {}));
  void b.scheduler.run(() => new Promise<void>((r) => (finishB = r)));
  let went: Replica | undefined;
  const sent = set.send(new Set(), (r) => {
    went = r;
    return r.scheduler.run(async () => "answer");
  });
  await new Promise((r) => setImmediate(r));
  assert.equal(went, undefined, "both full: it waits");
  assert.equal(a.scheduler.load, 1, "and is queued at neither");
  finishB();
  assert.equal(await sent, "answer");
  assert.equal(went, b);
});
