import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer } from "../server/openai-test-server.js";

/**
 * The requesting workers are about 1.5x the slots (build.ts requestWidth): samples that share a
 * request (a step that reads only some of the dimensions) must not each hold a worker while
 * together they fill one slot, nor must samples waiting out a retry's backoff.
 */
function manifest(o: { name: string; concurrency: number; retries: number; dimensions: Record<string, string[]>; prompt: string; output: string }): string {
  const dims = Object.entries(o.dimensions).map(([name, values]) => `  ${name}: [${values.join(", ")}]`);
  return `version: 1
name: ${o.name}
seed: 3
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { max_tokens: 20 }
  concurrency: ${o.concurrency}
  retries: ${o.retries}
  timeout_s: 20
dimensions:
${dims.join("\n")}
steps:
  - id: answer
    generate: { prompt: "${o.prompt}" }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "${o.output}", completion: "{{ answer }}" }
`;
}

const numbered = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${String(i).padStart(3, "0")}`);

/** Topics × styles, the step reading only the topic: `styles` samples share each request. */
const shared = (topics: number, styles: number, concurrency: number) =>
  manifest({
    name: "width",
    concurrency,
    retries: 1,
    dimensions: { topic: numbered("t", topics), style: numbered("s", styles) },
    prompt: "a scene about {{ topic }}",
    output: "{{ topic }} {{ style }}",
  });

/** Items i000…, those whose number ends in 3 or 7 (a fifth) to fail for good. */
const failing = (items: number, concurrency: number) =>
  manifest({ name: "backoff", concurrency, retries: 3, dimensions: { item: numbered("i", items) }, prompt: "say {{ item }}.", output: "{{ item }}" });

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
      const p = await TempProject.create({ "dataset.yaml": shared(200, 4, 64) });
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
