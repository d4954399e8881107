import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/errors.js";
import { walk } from "../../src/execute/walk.js";
import { expand } from "../../src/expand/expand.js";
import { parseManifest } from "../../src/manifest/load.js";
import { type Answer, newRun, type Resolver } from "../../src/plan/pipeline.js";

// The walk's own resolvers are stand-ins here: what is under test is the order of cache reads,
// requests and announcements, not the cache or the provider (the e2e tests cover those).
const manifest = () =>
  parseManifest(
    "d.yaml",
    "/nonexistent/d.yaml",
    `version: 1\nname: w\nmodel: { provider: echo }\ndimensions:\n  n: [${Array.from({ length: 200 }, (_, i) => `v${i}`).join(", ")}]\nsteps:\n  - id: s\n    generate: { prompt: "{{ n }}" }\noutput: { path: dist/o.jsonl, prompt: "{{ n }}", completion: "{{ s }}" }\n`,
    {},
  );

const answer = (text: string, cached: boolean): Answer => ({ text, finishReason: "stop", offline: true, cached });

test("requests start while the cache is still being read; the count is announced once, complete", async () => {
  const m = await manifest();
  const runs = expand(m).map((s) => newRun(m, s));
  const log: string[] = [];
  // Every third sample is missing from the cache.
  const cached: Resolver = { answer: async (_k, _r, sample) => (log.push("read"), Number(sample.values[0]!.key.slice(1)) % 3 ? answer("c", true) : undefined) };
  const requesting: Resolver = {
    answer: async (_k, _r, sample) => {
      // A turn of the event loop, as a socket needs: it must come while the scan is still going.
      await new Promise((r) => setImmediate(r));
      log.push("request");
      await new Promise((r) => setTimeout(r, 5));
      return answer(`r${sample.id}`, false);
    },
  };
  const announced: { n: number; cursors: number[] }[] = [];
  await walk(m, runs, {
    cached,
    requesting,
    width: 16,
    onPending: (pending) => announced.push({ n: pending.length, cursors: [...new Set(pending.map((p) => p.cursor))] }),
  });
  const firstRequest = log.indexOf("request");
  assert.ok(firstRequest >= 0 && firstRequest < log.lastIndexOf("read"), "a request got past a turn of the event loop before the last cache read");
  assert.deepEqual(announced, [{ n: 67, cursors: [0] }], "announced once, with the step each sample stopped on (not where it is now)");
  assert.equal(runs.filter((r) => r.status === "kept").length, 200);
  assert.equal(runs.filter((r) => r.steps[0]?.status === "ran").length, 67);
});

test("a build error in a request is thrown at once, and stops the scan and further requests", async () => {
  const m = await manifest();
  const runs = expand(m).map((s) => newRun(m, s));
  let reads = 0;
  let requests = 0;
  const cached: Resolver = { answer: async () => (reads++, undefined) };
  const requesting: Resolver = {
    answer: async () => {
      if (++requests === 3) throw new UsageError("the endpoint refused the key");
      await new Promise((r) => setTimeout(r, 50));
      return answer("x", false);
    },
  };
  const started = Date.now();
  await assert.rejects(walk(m, runs, { cached, requesting, width: 4 }), /refused the key/);
  assert.ok(Date.now() - started < 40, `thrown at once, not after the requests in flight (${Date.now() - started} ms)`);
  assert.ok(reads < 200, `the scan stopped early (read ${reads})`);
  const after = requests;
  await new Promise((r) => setTimeout(r, 120));
  assert.ok(requests <= after + 4, "no new requests after the failure beyond those already taken");
});
