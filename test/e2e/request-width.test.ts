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

describe("requesting workers against the endpoint's slots", () => {
  const projects: TempProject[] = [];
  after(async () => {
    for (const p of projects) await p.remove();
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
