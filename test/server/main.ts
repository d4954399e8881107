/**
 * Standalone runner for the deterministic test server, for e2e tests and
 * benchmarks that want the provider in a separate process:
 *
 *   node --import tsx test/server/main.ts --port 0 --latency 200 --rpm 6000 --answer-words 60
 *   … --rpm 6000 --enforce-over-ms 1000     # 100 a second, as OpenAI may enforce 6,000 rpm
 *   … --max-in-flight 3                     # 429 beyond 3 requests in flight
 *   … --tpm 100000 --no-state-limits        # tokens too; no x-ratelimit-* headers
 *   … --no-retry-after                      # refusals carry only x-ratelimit-*, as OpenAI's often do
 *   … --retry-after-seconds                 # retry-after in whole seconds only, no retry-after-ms
 *   … --batch-step-ms 200                   # the Batch API: each stage of a batch lasts 200 ms
 *
 * Prints exactly one JSON line `{"url": "...", "baseURL": "..."}` on stdout
 * once listening, then serves until SIGTERM/SIGINT. Drive it at runtime via
 * the /__control/* endpoints.
 */
import { parseArgs } from "node:util";
import { startTestServer, type TestServerOptions } from "./openai-test-server.js";

function num(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) {
    process.stderr.write(`test-server: --${name} must be a non-negative number, got ${JSON.stringify(value)}\n`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: "string" },
    host: { type: "string" },
    latency: { type: "string" },
    rpm: { type: "string" },
    "rpm-window-ms": { type: "string" },
    tpm: { type: "string" },
    "enforce-over-ms": { type: "string" },
    "max-in-flight": { type: "string" },
    "no-state-limits": { type: "boolean" },
    "no-retry-after": { type: "boolean" },
    "retry-after-seconds": { type: "boolean" },
    "answer-words": { type: "string" },
    "api-key": { type: "string" },
    "batch-step-ms": { type: "string" },
  },
  strict: true,
});

const opts: TestServerOptions = {
  port: num("port", values.port) ?? 0,
  host: values.host ?? "127.0.0.1",
  latencyMs: num("latency", values.latency),
  rpm: num("rpm", values.rpm),
  rpmWindowMs: num("rpm-window-ms", values["rpm-window-ms"]),
  tpm: num("tpm", values.tpm),
  enforceOverMs: num("enforce-over-ms", values["enforce-over-ms"]),
  maxInFlight: num("max-in-flight", values["max-in-flight"]),
  stateLimits: !values["no-state-limits"],
  retryAfter: values["no-retry-after"] ? false : values["retry-after-seconds"] ? "seconds" : true,
  answerWords: num("answer-words", values["answer-words"]),
  apiKey: values["api-key"],
  batchStepMs: num("batch-step-ms", values["batch-step-ms"]),
};

const server = await startTestServer(opts);
process.stdout.write(JSON.stringify({ url: server.url, baseURL: server.baseURL }) + "\n");

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await server.close();
  process.exit(0);
}
process.on("SIGTERM", () => void stop());
process.on("SIGINT", () => void stop());
