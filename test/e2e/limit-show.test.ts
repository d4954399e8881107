import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** `build --limit` (a trial run) and `show` (one sample to its row), through the real binary. */

describe("build --limit", { concurrency: false }, () => {
  let server: TestServer;
  const KEY = "sk-test-limit-4242";
  before(async () => {
    server = await startTestServer({ apiKey: KEY });
  });
  after(() => server.close());

  test("after a value is added, --limit 2 requests 2 of the samples that need one (the first N are all cached)", async () => {
    const m = (places: string) => `version: 1
name: limit
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  concurrency: 4
  retries: 1
dimensions:
  genre: [sf, romance, comedy]
  place: [${places}]
steps:
  - id: outline
    generate: { prompt: "Outline a {{ genre }} story in {{ place }}." }
output: { path: dist/x.jsonl, format: prompt-completion, prompt: "{{ genre }} {{ place }}", completion: "{{ outline }}" }
`;
    const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY };
    const p = await TempProject.create({ "dataset.yaml": m("Paris, Kyoto") });
    const full = await runCli(["build", "--json"], p.dir, env);
    assert.equal(full.status, 0, full.stderr);
    assert.equal(server.requests.length, 6);
    await p.write({ "dataset.yaml": m("Paris, Kyoto, Lagos") });
    server.reset();
    const r = await runCli(["build", "--json", "--limit", "2"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(server.requests.length, 2, "exactly 2 requests reached the endpoint");
    for (const q of server.requests) assert.match(q.body.messages.at(-1).content, /Lagos/);
    const json = JSON.parse(r.stdout);
    assert.equal(json.requests, 2);
    assert.equal(json.held_back, 1);
    assert.equal(json.outputs[0].rows, 8);
    assert.match(r.stderr, /1 not built \(1 outside --limit\)/);
    // The next trial run takes the one left; then nothing is left to try.
    server.reset();
    assert.equal((await runCli(["build", "--json", "--limit", "2"], p.dir, env)).status, 0);
    assert.equal(server.requests.length, 1);
    await p.remove();
  });
});
