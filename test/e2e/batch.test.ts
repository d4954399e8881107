import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { runCliBounded as runCli, spawnCli, waitFor } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** Fast polls: the test server's batches move every `batchStepMs`. */
const POLL = { SYNTHBUILD_BATCH_POLL_MS: "20" };

function manifest(o: { samples: number; mode?: string; batchAbove?: number; twoSteps?: boolean; price?: boolean; schema?: boolean }): string {
  const items = Array.from({ length: o.samples }, (_, i) => `v${String(i).padStart(2, "0")}`).join(", ");
  const mode = o.mode ? `\n  mode: ${o.mode}` : "";
  const above = o.batchAbove !== undefined ? `\n  batch_above: ${o.batchAbove}` : "";
  const price = o.price ? "\n  price: { input_per_mtok: 1000, output_per_mtok: 1000 }" : "";
  const schema = o.schema ? `, json_schema: { type: object, properties: { answer: { type: string } }, required: [answer] }` : "";
  return `version: 1
name: batch
seed: 3
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { max_tokens: 30 }
  retries: 2${mode}${above}${price}
dimensions:
  item: [${items}]
steps:
  - id: outline
    generate: { prompt: "Outline {{ item }} briefly"${schema} }
${
  o.twoSteps
    ? `  - id: expanded
    generate: { prompt: "Expand: {{ outline }}" }
`
    : ""
}output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ item }}", completion: "{{ ${o.twoSteps ? "expanded" : "outline"} }}" }
`;
}

const chatRequests = (s: TestServer) => s.stats().requests;

async function batchFiles(p: TempProject): Promise<string[]> {
  return (await readdir(join(p.dir, "cache", "state", "batches")).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
}

describe("batch mode (the OpenAI Batch API)", () => {
  const projects: TempProject[] = [];
  const servers: TestServer[] = [];
  const project = async (files: Record<string, string>) => {
    const p = await TempProject.create(files);
    projects.push(p);
    return p;
  };
  const server = async (batchStepMs = 30) => {
    const s = await startTestServer({ answerWords: 12, batchStepMs });
    servers.push(s);
    return s;
  };
  after(async () => {
    for (const p of projects) await p.remove();
    for (const s of servers) await s.close();
  });

  test("two steps by batch: no direct request, the second step's batch built from the first's answers, the same dist/ as a direct build", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const direct = await project({ "dataset.yaml": manifest({ samples: 6, twoSteps: true }) });
    const d = await runCli(["build", "--json"], direct.dir, env);
    assert.equal(d.status, 0, d.stderr);
    assert.equal(chatRequests(s), 12);
    s.reset();

    const batched = await project({ "dataset.yaml": manifest({ samples: 6, twoSteps: true, mode: "batch" }) });
    const b = await runCli(["build", "--json"], batched.dir, env);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(chatRequests(s), 0, "no direct /v1/chat/completions request");
    assert.equal(s.batches.counts.batchesCreated, 2, "one batch per step");
    const [first, second] = s.batches.list();
    assert.equal(first!.customIds.length, 6);
    assert.equal(second!.customIds.length, 6);
    // The rows byte for byte; the dataset card differs, as it names the lock's hash, and the lock says which batch answered.
    assert.equal(await batched.read("dist/out.jsonl"), await direct.read("dist/out.jsonl"));
    assert.deepEqual(await batchFiles(batched), [], "finished batches leave no state");
    // The same cache keys as direct requests: a direct build on the batch build's cache asks nothing.
    assert.deepEqual(await batched.cacheKeys(), await direct.cacheKeys());
    await batched.write({ "dataset.yaml": manifest({ samples: 6, twoSteps: true }) });
    const again = await runCli(["build", "--json"], batched.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).requests, 0);
    assert.equal(chatRequests(s), 0);
    assert.equal(s.batches.counts.batchesCreated, 2);
  });
});
