import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { answerFor, promptTokensFor, startTestServer, type TestServer, wordCount } from "../server/openai-test-server.js";

/** USD per million tokens, input and output alike: $0.001 a token, so a 60-token answer is $0.06. */
const PRICE = 1000;

function manifest(o: { samples: number; schema?: boolean; retries?: number; maxTokens?: number; concurrency?: number }): string {
  const items = Array.from({ length: o.samples }, (_, i) => `v${String(i).padStart(2, "0")}`).join(", ");
  const schema = o.schema ? `, json_schema: { type: object, properties: { answer: { type: string } }, required: [answer] }` : "";
  return `version: 1
name: cost
seed: 5
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { max_tokens: ${o.maxTokens ?? 40} }
  concurrency: ${o.concurrency ?? 2}
  retries: ${o.retries ?? 2}
  price: { input_per_mtok: ${PRICE}, output_per_mtok: ${PRICE} }
dimensions:
  item: [${items}]
steps:
  - id: answer
    generate: { prompt: "Tell me about {{ item }}"${schema} }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ item }}", completion: "{{ answer }}" }
`;
}

/** What the server was paid: every 200 it sent carried usage (prompt + completion), schema-valid or not. */
function paid(server: TestServer, answerWords: number): number {
  let tokens = 0;
  for (const r of server.requests) if (r.status === 200) tokens += promptTokensFor(r.body) + wordCount(answerFor(r.body, answerWords).text);
  return (tokens * PRICE) / 1e6;
}

describe("--max-cost counts every paid answer", () => {
  const projects: TempProject[] = [];
  after(async () => {
    for (const p of projects) await p.remove();
  });

  test("answers that fail their schema are paid, and so are their retries: the spend stays under --max-cost", { timeout: 30_000 }, async () => {
    const server = await startTestServer({ answerWords: 30 });
    try {
      const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 12, schema: true, retries: 3 }) });
      projects.push(p);
      // Half the samples always get a well-formed answer whose JSON is cut short: paid, invalid, retried.
      for (const i of [0, 2, 4, 6, 8, 10]) server.inject({ kind: "malformed_content", match: `about v${String(i).padStart(2, "0")}` });
      const MAX = 0.2;
      const r = await runCli(["build", "--json", "--max-cost", String(MAX)], p.dir, { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" });
      assert.equal(r.status, 1, r.stderr);
      const json = JSON.parse(r.stdout);
      const spent = paid(server, 30);
      assert.ok(spent > 0.05, `spent only $${spent}: the test proves nothing`);
      assert.ok(spent <= MAX + 1e-9, `the server was paid $${spent.toFixed(4)} under --max-cost ${MAX}`);
      assert.ok(Math.abs(json.cost_usd - spent) < 1e-6, `the build reports $${json.cost_usd}, the server was paid $${spent.toFixed(4)}`);
      assert.match(r.stderr, /--max-cost/);
    } finally {
      await server.close();
    }
  });
});
