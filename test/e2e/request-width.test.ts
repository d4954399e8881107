import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer } from "../server/openai-test-server.js";

/**
 * The requesting workers are about 1.5x the slots (build.ts requestWidth): samples that share a request (a step that
 * reads only some of the dimensions) must not each hold a worker while together they fill one slot.
 */
function manifest(topics: number, styles: number, concurrency: number): string {
  const t = Array.from({ length: topics }, (_, i) => `t${String(i).padStart(3, "0")}`).join(", ");
  const s = Array.from({ length: styles }, (_, i) => `s${i}`).join(", ");
  return `version: 1
name: width
seed: 3
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { max_tokens: 20 }
  concurrency: ${concurrency}
  retries: 1
  timeout_s: 20
dimensions:
  topic: [${t}]
  style: [${s}]
steps:
  - id: scene
    generate: { prompt: "a scene about {{ topic }}" }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ topic }} {{ style }}", completion: "{{ scene }}" }
`;
}

/** Items i000…, a tenth of a build's requests failing for good on those whose number ends in 7 or 3. */
function failing(items: number, concurrency: number): string {
  const list = Array.from({ length: items }, (_, i) => `i${String(i).padStart(3, "0")}`).join(", ");
  return `version: 1
name: backoff
seed: 3
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { max_tokens: 20 }
  concurrency: ${concurrency}
  retries: 3
  timeout_s: 20
dimensions:
  item: [${list}]
steps:
  - id: answer
    generate: { prompt: "say {{ item }}." }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ item }}", completion: "{{ answer }}" }
`;
}

describe("requesting workers against the endpoint's slots", () => {
  const projects: TempProject[] = [];
  after(async () => {
    for (const p of projects) await p.remove();
  });

  test("samples waiting out a retry's backoff do not hold the workers the other samples need", { timeout: 60_000 }, async () => {
    const server = await startTestServer({ latencyMs: 50, answerWords: 5 });
    try {
      // 20% of 240 fail for good (three retries: about 3.5 s of backoff each), far more than
      // the 24 workers beyond the 8 slots: without lent workers they would hold them all.
      for (const end of ["3.", "7."]) server.inject({ kind: "status", status: 500, match: end });
      const p = await TempProject.create({ "dataset.yaml": failing(240, 8) });
      projects.push(p);
      const r = await runCli(["build", "--json"], p.dir, { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-test" }, 50_000);
      assert.equal(r.status, 1, r.stderr);
      assert.equal((JSON.parse(r.stdout) as { failed: number }).failed, 48);
      const ok = server.requests.filter((q) => q.status === 200).map((q) => q.at);
      assert.equal(ok.length, 192);
      // 192 answers at 8 in flight and 50 ms are 1.2 s of requests: held workers would stretch
      // them to the failures' backoff and beyond.
      const spanS = (Math.max(...ok) - Math.min(...server.requests.map((q) => q.at))) / 1000;
      assert.ok(spanS < 2.5, `the answered requests took ${spanS.toFixed(2)} s`);
    } finally {
      await server.close();
    }
  });

  test("samples sharing one request do not leave the endpoint's slots idle", { timeout: 60_000 }, async () => {
    const server = await startTestServer({ latencyMs: 300, answerWords: 5 });
    try {
      const p = await TempProject.create({ "dataset.yaml": manifest(200, 4, 64) });
      projects.push(p);
      const r = await runCli(["build", "--json"], p.dir, { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-test" }, 50_000);
      assert.equal(r.status, 0, r.stderr);
      const stats = server.stats();
      assert.equal(stats.answered, 200);
      // 200 distinct requests, 64 slots: the endpoint should see (nearly) 64 at once.
      assert.ok(stats.maxInFlight >= 48, `only ${stats.maxInFlight} of 64 slots were ever busy at once`);
    } finally {
      await server.close();
    }
  });
});
