import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

const MANIFEST = `version: 1
name: probe
model: { provider: openai, name: test-model, base_url: "\${TEST_BASE_URL}" }
dimensions: { a: [x] }
steps:
  - id: s
    generate: { prompt: "{{ a }}" }
output: { path: dist/x.jsonl, prompt: "{{ a }}", completion: "{{ s }}" }
`;

describe("synthbuild probe", () => {
  let server: TestServer;
  let p: TempProject;
  before(async () => {
    // A server that serves 6 requests at once, 200 ms each, and refuses beyond: what to set is 6.
    server = await startTestServer({ latencyMs: 200, maxInFlight: 6 });
    p = await TempProject.create({ "dataset.yaml": MANIFEST });
  });
  after(async () => {
    await server.close();
    await p.remove();
  });

  test("finds the knee of a server that serves 6 at once, and caches nothing", { timeout: 60_000 }, async () => {
    const r = await runCli(["probe", "--seconds", "1", "--json"], p.dir, { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" });
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as { knee: number; best_throughput: number; levels: { concurrency: number; throughput: number; refused: number }[] };
    assert.deepEqual(j.levels.map((l) => l.concurrency).slice(0, 4), [1, 2, 4, 8]);
    // 1 in flight: ~5 answers/s; 4: ~20; at 8 the server refuses 2 of every 8. (Loose bounds: a
    // loaded machine adds latency, never answers.)
    assert.ok(j.levels[0]!.throughput > 2.5 && j.levels[0]!.throughput <= 5.2, JSON.stringify(j.levels));
    assert.ok(j.levels[2]!.throughput > 2.5 * j.levels[0]!.throughput, "throughput grows with concurrency below the limit");
    assert.ok(j.levels[3]!.refused > 0, "beyond 6 in flight the server refuses");
    // At 8 it refused: what it served at once there (answers/s × seconds each) is what to set.
    assert.ok(j.knee >= 4 && j.knee <= 6, `knee ${j.knee}: ${JSON.stringify(j.levels)}`);
    assert.ok(j.levels.length <= 4, "it stops rising once the server refuses");
    assert.equal(await p.exists("cache/objects"), false, "probe requests are not cached");
    assert.equal(await p.exists("cache/packs"), false, "probe requests are not cached");
    assert.equal(await p.exists("dataset.lock"), false);

    const text = await runCli(["probe", "--seconds", "0.5", "--max", "2"], p.dir, { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" });
    assert.equal(text.status, 0, text.stderr);
    assert.match(text.stdout, /concurrency +answers\/s +p50 ms/);
    assert.match(text.stdout, /knee at concurrency [12] \(.* answers\/s at best\): set model\.concurrency: [12]/);
  });

  test("a wrong key stops the probe at the first answer, with the key the endpoint echoes masked", { timeout: 60_000 }, async () => {
    const strict = await startTestServer({ apiKey: "right", echoKey: true });
    try {
      const r = await runCli(["probe", "--seconds", "2"], p.dir, { TEST_BASE_URL: strict.baseURL, OPENAI_API_KEY: "sk-wrong-probe-key" });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /no answer from .* at concurrency 1/);
      assert.doesNotMatch(r.stderr + r.stdout, /sk-wrong-probe-key/);
      assert.ok(strict.stats().requests <= 2, `${strict.stats().requests} requests after a 401`);
    } finally {
      await strict.close();
    }
  });

  test("a dead endpoint is one clear error, exit 2, the key never printed", { timeout: 60_000 }, async () => {
    const r = await runCli(["probe", "--seconds", "0.5"], p.dir, { TEST_BASE_URL: "http://127.0.0.1:9", OPENAI_API_KEY: "sk-secret-probe-key" });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /no answer from http:\/\/127\.0\.0\.1:9 at concurrency 1/);
    assert.doesNotMatch(r.stderr + r.stdout, /sk-secret-probe-key/);
  });
});
