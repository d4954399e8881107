import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer, type TestServerOptions } from "../server/openai-test-server.js";

/**
 * Rate limits as real gateways enforce them, end to end: the real binary and SDK against the test
 * server enforcing a per-minute limit per second, stating it only in x-ratelimit-* headers (no
 * retry-after, as OpenAI's refusals often come), or refusing beyond K in flight. Retries are few
 * on purpose: a build that spent its error budget on 429s would fail samples here.
 */

function manifest(o: { name: string; samples: number; rpm?: number; concurrency?: number }): string {
  const items = Array.from({ length: o.samples }, (_, i) => `v${String(i).padStart(2, "0")}`).join(", ");
  return `version: 1
name: ${o.name}
seed: 3
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { max_tokens: 20 }
  concurrency: ${o.concurrency ?? 16}
  retries: 1
  timeout_s: 10
${o.rpm ? `  rpm: ${o.rpm}\n` : ""}dimensions:
  item: [${items}]
steps:
  - id: answer
    generate: { prompt: "${o.name}: tell me about {{ item }}" }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ item }}", completion: "{{ answer }}" }
`;
}

async function withServer(opts: TestServerOptions, fn: (server: TestServer) => Promise<void>): Promise<void> {
  const server = await startTestServer({ latencyMs: 20, answerWords: 10, ...opts });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

async function build(p: TempProject, server: TestServer): Promise<{ status: number | null; json: any; stderr: string }> {
  const r = await runCli(["build", "--json"], p.dir, { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-test" }, 30_000);
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { status: r.status, json, stderr: r.stderr };
}

describe("rate limits as gateways enforce them", () => {
  const projects: TempProject[] = [];
  const project = async (m: string) => {
    const p = await TempProject.create({ "dataset.yaml": m });
    projects.push(p);
    return p;
  };
  after(async () => {
    for (const p of projects) await p.remove();
  });

  test("a limit the manifest does not declare, stated by the server and enforced per second: no sample fails", { timeout: 40_000 }, async () => {
    await withServer({ rpm: 600, enforceOverMs: 1000, retryAfter: false }, async (server) => {
      // All 40 sent at once: 10 fit the first second, and each of the others has one retry to spare.
      const p = await project(manifest({ name: "undeclared", samples: 40, concurrency: 64 }));
      const r = await build(p, server);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.equal(server.stats().answered, 40);
      assert.ok(server.stats().refused429 > 0, "the limit was never reached: the test proves nothing");
    });
  });

  test("two builds sharing one key and one limit, each declaring all of it: both finish with no failure", { timeout: 40_000 }, async () => {
    await withServer({ rpm: 600, enforceOverMs: 1000, retryAfter: false }, async (server) => {
      const a = await project(manifest({ name: "first", samples: 20, rpm: 600 }));
      const b = await project(manifest({ name: "second", samples: 20, rpm: 600 }));
      const [ra, rb] = await Promise.all([build(a, server), build(b, server)]);
      assert.equal(ra.status, 0, ra.stderr);
      assert.equal(rb.status, 0, rb.stderr);
      assert.deepEqual([ra.json.failed, rb.json.failed], [0, 0]);
      assert.equal(server.stats().answered, 40);
      assert.ok(server.stats().refused429 > 0, "the two builds never contended: the test proves nothing");
    });
  });

  test("a server allowing 2 requests in flight: every sample built, concurrency held near the limit", { timeout: 40_000 }, async () => {
    await withServer({ maxInFlight: 2, latencyMs: 50 }, async (server) => {
      const p = await project(manifest({ name: "inflight", samples: 30, concurrency: 32 }));
      const r = await build(p, server);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.equal(server.stats().answered, 30);
      // Cut once per congestion event to three quarters, the limit reaches 2 in a few refusals and
      // then probes one above it about once a round trip; halving per 429 with backoff refused far more.
      assert.ok(server.stats().refused429 < 60, `${server.stats().refused429} refusals for 30 answers`);
    });
  });
});
