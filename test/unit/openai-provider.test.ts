import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { after, before, test } from "node:test";
import type { ModelConfig } from "../../src/manifest/types.js";
import { OpenAIProvider } from "../../src/providers/openai.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

let server: TestServer;
before(async () => {
  server = await startTestServer();
});
after(() => server.close());

const cfg = (baseUrl: string): ModelConfig => ({
  provider: "openai",
  name: "m",
  baseUrl,
  endpoint: baseUrl,
  apiKeyEnv: "OPENAI_API_KEY",
  headers: {},
  extraBody: {},
  params: {},
  concurrency: 8,
  timeoutS: 5,
  totalTimeoutS: 15,
  retries: 0,
});
const request = (i: number) => ({
  provider: "openai" as const,
  endpoint: "test",
  model: "m",
  messages: [{ role: "user" as const, content: `q${i}` }],
  params: {},
});

test("the build's one abort signal does not collect a listener per request", async () => {
  const provider = new OpenAIProvider(cfg(server.baseURL), "k");
  const build = new AbortController();
  for (let i = 0; i < 30; i++) await provider.complete(request(i), build.signal);
  // One, the transport's (http-fetch.ts CANCEL), whatever the number of requests.
  assert.equal(getEventListeners(build.signal, "abort").length, 1);
  await Promise.all(Array.from({ length: 30 }, (_, i) => provider.complete(request(100 + i), build.signal)));
  assert.equal(getEventListeners(build.signal, "abort").length, 1);
});

test("aborting the build's signal still aborts a request in flight, and one not yet sent", async () => {
  const provider = new OpenAIProvider(cfg(server.baseURL), "k");
  server.setLatency(5_000);
  try {
    const build = new AbortController();
    const pending = provider.complete(request(1), build.signal);
    setTimeout(() => build.abort(), 50);
    await assert.rejects(pending, { message: "aborted" });
    await assert.rejects(provider.complete(request(2), build.signal), { message: "aborted" });
    assert.equal(getEventListeners(build.signal, "abort").length, 0);
  } finally {
    server.setLatency(0);
  }
});
