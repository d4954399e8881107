import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import { allFiles, item, parseLockText, runCliBounded as runCli, scanCache } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { type FaultRule, startTestServer, type TestServer, type TestServerOptions } from "../server/openai-test-server.js";

/**
 * Endpoints that fail as real ones do, end to end: the real binary and the real openai SDK over
 * HTTP to the test server. Errors that concern the whole endpoint stop the build once; answers
 * that are not what they should be drop or fail the one sample with a precise reason; no key ever
 * reaches a file or an output.
 */

const KEY = "sk-test-SECRET0123456789abcdefXYZ";

interface ManifestOptions {
  samples: number;
  baseUrl?: string;
  concurrency?: number;
  retries?: number;
  timeoutS?: number;
  totalTimeoutS?: number;
  apiKeyEnv?: string;
  maxTokens?: number;
  /** extra keys of the generate step, as YAML lines */
  generate?: string[];
  /** further steps, as YAML lines */
  steps?: string[];
}

function manifest(o: ManifestOptions): string {
  const items = Array.from({ length: o.samples }, (_, i) => item(i)).join(", ");
  return [
    "version: 1",
    "name: endpoint-failures",
    "seed: 7",
    "model:",
    "  provider: openai",
    "  name: test-model",
    `  base_url: ${o.baseUrl ?? "${TEST_BASE_URL}"}`,
    `  params: { temperature: 1, max_tokens: ${o.maxTokens ?? 40} }`,
    `  concurrency: ${o.concurrency ?? 2}`,
    `  retries: ${o.retries ?? 3}`,
    `  timeout_s: ${o.timeoutS ?? 10}`,
    ...(o.totalTimeoutS ? [`  total_timeout_s: ${o.totalTimeoutS}`] : []),
    ...(o.apiKeyEnv ? [`  api_key_env: ${o.apiKeyEnv}`] : []),
    "dimensions:",
    `  item: [${items}]`,
    "steps:",
    "  - id: outline",
    "    generate:",
    `      prompt: "Outline item [{{ item }}] briefly."`,
    ...(o.generate ?? []).map((l) => `      ${l}`),
    ...(o.steps ?? []),
    "output:",
    "  path: dist/out.jsonl",
    "  format: openai-chat",
    `  prompt: "Item {{ item }}"`,
    `  completion: "{{ outline }}"`,
    "",
  ].join("\n");
}

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  json: any;
}

interface Ctx {
  server: TestServer;
  p: TempProject;
  build: (env?: Record<string, string | undefined>, ...args: string[]) => Promise<Run>;
}

async function withProject(m: string, serverOpts: TestServerOptions, fn: (c: Ctx) => Promise<void>): Promise<void> {
  const server = await startTestServer(serverOpts);
  const p = await TempProject.create({ "dataset.yaml": m });
  try {
    await fn({
      server,
      p,
      build: async (env = {}, ...args) => {
        const r = await runCli(["build", "--json", ...args], p.dir, { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY, ...env }, 30_000);
        let json: any;
        try {
          json = JSON.parse(r.stdout);
        } catch {
          json = undefined;
        }
        return { ...r, json };
      },
    });
  } finally {
    await server.close();
    await p.remove();
  }
}

/** Every place a key could end up: the project's files (cache, lock, dist) and what the command printed. */
async function assertNoKey(p: TempProject, r: Run, key = KEY): Promise<void> {
  for (const [path, text] of Object.entries(await allFiles(p.dir))) assert.ok(!text.includes(key), `the key is in ${path}`);
  assert.ok(!r.stdout.includes(key), `the key is on stdout:\n${r.stdout}`);
  assert.ok(!r.stderr.includes(key), `the key is on stderr:\n${r.stderr}`);
}

const lockOf = async (p: TempProject) => parseLockText(await p.read("dataset.lock"));
const rowsOf = async (p: TempProject) => (await p.read("dist/out.jsonl").catch(() => "")).split("\n").filter(Boolean);
const statuses = (srv: TestServer) => srv.requests.map((r) => r.status);

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** An error that concerns the whole endpoint: one message, exit 1, nothing written. */
function assertStopped(r: Run, what: RegExp): void {
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, what);
  assert.equal(r.stderr.match(/^error: /gm)?.length, 1, `one error message:\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /failed at|failed samples/, "no failure per sample");
  assert.match(r.stderr, /endpoint http:\/\/127\.0\.0\.1:\d+\/\S*, model test-model, step 'outline'/);
  assert.match(r.stderr, /hint: /);
  assert.equal(r.json?.error?.kind, "EndpointError", r.stdout);
  assert.equal(r.json?.error?.exit_code, 1);
  assert.equal(r.json?.error?.model, "test-model");
  assert.equal(r.json?.error?.step, "outline");
  assert.match(r.json?.error?.endpoint, /^http:\/\/127\.0\.0\.1:\d+\//);
}

describe("errors that concern the whole endpoint stop the build at once", { concurrency: false }, () => {
  test("a wrong key: one message naming the key's variable, no request after the first 401, the old dist/ and lock untouched", {
    timeout: 30_000,
  }, async () => {
    await withProject(manifest({ samples: 4 }), { apiKey: KEY, echoKey: true }, async ({ server, p, build }) => {
      const first = await build();
      assert.equal(first.status, 0, first.stderr);
      const before = { dist: await p.snapshot(), lock: await p.read("dataset.lock") };
      // Twelve new samples, none cached; the endpoint now gets a key it does not accept.
      await p.write({ "dataset.yaml": manifest({ samples: 16, concurrency: 2 }) });
      server.reset();
      const wrong = "sk-wrong-key-1234567890abcdef";
      const r = await build({ OPENAI_API_KEY: wrong });
      assertStopped(r, /error: the endpoint rejected the API key \(HTTP 401: Incorrect API key provided: /);
      assert.match(r.stderr, /hint: check OPENAI_API_KEY/);
      // Two in flight at once: the 401s of the first two; nothing started after them.
      assert.ok(server.requests.length <= 2, `${server.requests.length} requests: ${statuses(server)}`);
      assert.deepEqual(await p.snapshot(), before.dist);
      assert.equal(await p.read("dataset.lock"), before.lock);
      await assertNoKey(p, r, wrong);
    });
  });

  test("no key set for a base_url that wants one: the stop says the variable is unset, not that its key is wrong", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 4 }), { apiKey: KEY }, async ({ build }) => {
      const r = await build({ OPENAI_API_KEY: "" });
      assertStopped(r, /error: the endpoint wants an API key, and OPENAI_API_KEY is not set \(HTTP 401/);
      assert.match(r.stderr, /hint: export OPENAI_API_KEY=<a key that http:\/\/127\.0\.0\.1:\d+\/v1 accepts>/);
    });
  });

  test("a forbidden project (403): the requests in flight finish and their answers are cached; nothing starts after it", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 12, concurrency: 4 }), { latencyMs: 300 }, async ({ server, p, build }) => {
      // The first request to arrive gets the 403 at once; the other three are answered 300 ms later.
      server.inject({
        kind: "status",
        status: 403,
        times: 1,
        body: { error: { message: "Project proj_x is not allowed here", type: "invalid_request_error", code: null } },
      });
      const r = await build();
      assertStopped(r, /error: the endpoint refused access \(HTTP 403: Project proj_x is not allowed here\)/);
      assert.equal(server.requests.length, 4, `${statuses(server)}`);
      assert.deepEqual(statuses(server).sort(), [200, 200, 200, 403]);
      assert.equal((await scanCache(p.dir)).valid.length, 3);
      assert.equal(await p.exists("dataset.lock"), false);
      assert.equal(await p.exists("dist/out.jsonl"), false);
      // Built again once access is granted: only the nine missing answers are requested.
      server.reset();
      const again = await build();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(server.requests.length, 9);
    });
  });

  test("403 with no other answer in flight: forbidden, and nothing else is sent", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 10, concurrency: 1 }), {}, async ({ server, p, build }) => {
      server.inject({
        kind: "status",
        status: 403,
        body: { error: { message: "You are not allowed to sample from this model", type: "invalid_request_error", code: null } },
      });
      const r = await build();
      assertStopped(r, /error: the endpoint refused access \(HTTP 403: You are not allowed to sample from this model\)/);
      assert.equal(server.requests.length, 1);
      assert.equal(await p.exists("dataset.lock"), false);
    });
  });

  test("an unknown model (404 model_not_found): says to check model.name", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 6, concurrency: 1 }), {}, async ({ server, build }) => {
      server.inject({
        kind: "status",
        status: 404,
        body: {
          error: { message: "The model `test-model` does not exist or you do not have access to it.", type: "invalid_request_error", code: "model_not_found" },
        },
      });
      const r = await build();
      assertStopped(r, /error: the endpoint does not know model 'test-model' \(HTTP 404: The model `test-model` does not exist/);
      assert.match(r.stderr, /hint: check model\.name/);
      assert.equal(server.requests.length, 1);
    });
  });

  test("a 404 for the whole path: says to check model.base_url", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 6, concurrency: 1, baseUrl: "${TEST_ROOT}/api" }), {}, async ({ server, build }) => {
      const r = await build({ TEST_ROOT: server.url });
      assertStopped(r, /error: there is no chat completions API at http:\/\/127\.0\.0\.1:\d+\/api\/chat\/completions \(HTTP 404: Unknown route/);
      assert.match(r.stderr, /hint: check model\.base_url/);
    });
  });

  test("a json_schema the endpoint rejects: one message for the step", { timeout: 30_000 }, async () => {
    const m = manifest({ samples: 6, concurrency: 1, generate: ["json_schema: { type: object, properties: { title: { type: string } } }"] });
    await withProject(m, {}, async ({ server, build }) => {
      server.inject({
        kind: "status",
        status: 400,
        body: {
          error: {
            message:
              "Invalid schema for response_format 'answer': In context=(), 'required' is required to be supplied and to be an array including every key in properties. Missing 'title'.",
            type: "invalid_request_error",
            param: "response_format",
            code: "invalid_json_schema",
          },
        },
      });
      const r = await build();
      assertStopped(r, /error: the endpoint rejected step 'outline's json_schema \(HTTP 400: Invalid schema for response_format/);
      assert.equal(server.requests.length, 1);
    });
  });

  test("a 400 about one sample's content fails only that sample; the key it echoes is nowhere", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 5 }), {}, async ({ server, p, build }) => {
      server.inject({
        kind: "status",
        status: 400,
        match: `[${item(1)}]`,
        body: {
          error: {
            message: "Invalid prompt for key {{api_key}}: this sample's content was flagged",
            type: "invalid_request_error",
            param: "messages",
            code: null,
          },
        },
      });
      const r = await build({}, "--quiet");
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.json.failed, 1);
      assert.equal((await rowsOf(p)).length, 4);
      const failed = (await lockOf(p)).samples.find((s) => s.status === "failed")!;
      assert.match(failed.reason!.why, /^HTTP 400: Invalid prompt for key \*\*\*: this sample's content was flagged$/);
      assert.match(r.stderr, /at outline: HTTP 400: Invalid prompt for key \*\*\*/);
      await assertNoKey(p, r);
    });
  });
});

describe("an endpoint that cannot be reached", { concurrency: false }, () => {
  test("a dead port: 'cannot reach …: connection refused', exit 1, nothing written", { timeout: 20_000 }, async () => {
    const port = await deadPort();
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 24, concurrency: 4, retries: 6, baseUrl: `http://127.0.0.1:${port}/v1` }) });
    try {
      const r = await runCli(["build"], p.dir, { OPENAI_API_KEY: KEY }, 20_000);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`error: cannot reach http://127\\.0\\.0\\.1:${port}/v1: connection refused`));
      assert.doesNotMatch(r.stderr, /failed at/);
      assert.equal(await p.exists("dataset.lock"), false);
      assert.equal(await p.exists("dist/out.jsonl"), false);
    } finally {
      await p.remove();
    }
  });

  test("TLS failing (https to a plain HTTP server): cannot reach, TLS failed", { timeout: 20_000 }, async () => {
    const server = await startTestServer();
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 4, baseUrl: server.baseURL.replace("http:", "https:") }) });
    try {
      const r = await runCli(["build"], p.dir, { OPENAI_API_KEY: KEY }, 20_000);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /error: cannot reach https:\/\/127\.0\.0\.1:\d+\/v1: TLS failed: /);
    } finally {
      await server.close();
      await p.remove();
    }
  });

  test("an endpoint down for a moment at the start is waited for", { timeout: 20_000 }, async () => {
    const port = await deadPort();
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 6, retries: 6, baseUrl: `http://127.0.0.1:${port}/v1` }) });
    let server: TestServer | undefined;
    try {
      const run = runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: KEY }, 20_000);
      await sleep(400);
      server = await startTestServer({ port });
      const r = await run;
      assert.equal(r.status, 0, r.stderr);
      assert.equal(JSON.parse(r.stdout).failed, 0);
    } finally {
      await server?.close();
      await p.remove();
    }
  });

  test("a server that never answers: the breaker stops the build after the first timeouts", { timeout: 20_000 }, async () => {
    await withProject(manifest({ samples: 12, concurrency: 3, timeoutS: 0.3, retries: 6 }), {}, async ({ server, p, build }) => {
      server.inject({ kind: "hang" });
      const r = await build();
      assertStopped(
        r,
        /error: no answer from http:\/\/127\.0\.0\.1:\d+\/v1: \d+ attempts in a row got no response in 0\.3 s \(model\.timeout_s\), and none has been answered/,
      );
      assert.match(r.stderr, /raise it/);
      // Stopped within the breaker's 2 s of silence, long before 12 samples × 7 attempts.
      assert.ok(server.requests.length < 40, `${server.requests.length} requests`);
      assert.equal(await p.exists("dataset.lock"), false);
    });
  });

  test("a flaky endpoint that answers some requests keeps going: one hung request is retried, every sample built", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 6, concurrency: 3, timeoutS: 0.6, totalTimeoutS: 10, retries: 6 }), {}, async ({ server, build, p }) => {
      server.inject({ kind: "hang", match: `[${item(0)}]`, times: 3 });
      const r = await build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.equal((await rowsOf(p)).length, 6);
      // At least the three hung attempts and their retry (more if a loaded machine timed out others).
      assert.ok(server.requests.length >= 6 + 3, `${server.requests.length} requests`);
    });
  });
});

describe("a request that never answers has a time budget", { concurrency: false }, () => {
  test("timeout_s per attempt, total_timeout_s over all of them: the sample fails with both in the reason", { timeout: 20_000 }, async () => {
    await withProject(manifest({ samples: 4, concurrency: 2, timeoutS: 0.4, totalTimeoutS: 1, retries: 6 }), {}, async ({ server, p, build }) => {
      server.inject({ kind: "hang", match: `[${item(2)}]` });
      const r = await build();
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.json.failed, 1);
      const hung = server.requests.filter((q) => JSON.stringify(q.body).includes(`[${item(2)}]`)).length;
      // 0.4 + 0.4 + the 0.2 s left: three attempts, not seven.
      assert.equal(hung, 3);
      const failed = (await lockOf(p)).samples.find((s) => s.status === "failed")!;
      assert.match(failed.reason!.why, /^timed out: no answer in 0\.[12] s; model\.total_timeout_s \(1 s\) is used up \(after 3 attempts\)$/);
      assert.equal((await rowsOf(p)).length, 3);
    });
  });
});

describe("a model.api_key_env that is not set", () => {
  test("is an error before any request: exit 2, nothing written", { timeout: 20_000 }, async () => {
    await withProject(manifest({ samples: 3, apiKeyEnv: "MY_LLM_KEY" }), {}, async ({ server, p, build }) => {
      const r = await build({ MY_LLM_KEY: undefined });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /error: step 'outline' reads its API key from MY_LLM_KEY \(model\.api_key_env\), which is not set/);
      assert.equal(server.requests.length, 0);
      assert.equal(await p.exists("dataset.lock"), false);
      assert.equal(await p.exists("dist/out.jsonl"), false);
      assert.equal((await scanCache(p.dir)).valid.length, 0);
      const ok = await build({ MY_LLM_KEY: "sk-from-my-llm-key-123456" });
      assert.equal(ok.status, 0, ok.stderr);
      assert.equal(server.requests[0]!.headers.authorization, "Bearer sk-from-my-llm-key-123456");
    });
  });
});

describe("answers that are not what they should be", { concurrency: false }, () => {
  /** Three samples, the fault on the middle one; the build's run and lock line of that sample. */
  async function oneBad(rule: FaultRule, o: Partial<ManifestOptions> = {}, rebuild = false) {
    let out!: {
      r: Run;
      sample: ReturnType<typeof parseLockText>["samples"][number];
      requests: number;
      rows: string[];
      cached: number;
      rebuildRequests?: number;
    };
    await withProject(manifest({ samples: 3, ...o }), {}, async ({ server, p, build }) => {
      server.inject({ ...rule, match: `[${item(1)}]` });
      const r = await build();
      const lock = await lockOf(p);
      const requests = server.requests.filter((q) => JSON.stringify(q.body).includes(`[${item(1)}]`)).length;
      const sample = lock.samples.find((s) => s.values.item === item(1))!;
      const rows = await rowsOf(p);
      const cached = (await scanCache(p.dir)).valid.length;
      out = { r, sample, requests, rows, cached };
      if (rebuild) {
        server.reset();
        const again = await build();
        assert.equal(again.status, 0, again.stderr);
        out.rebuildRequests = server.requests.length;
      }
    });
    return out;
  }

  test("a refusal is the model's answer: dropped with its text, asked once, cached", { timeout: 20_000 }, async () => {
    const o = await oneBad({ kind: "refusal" }, {}, true);
    assert.equal(o.r.status, 0, o.r.stderr);
    assert.equal(o.sample.status, "dropped");
    assert.deepEqual(o.sample.reason, { step: "outline", why: "the model refused: I'm sorry, I can't help with that." });
    assert.equal(o.requests, 1);
    assert.equal(o.rows.length, 2);
    assert.equal(o.cached, 3);
    assert.equal(o.r.json.dropped, 1);
    // Paid for and cached: the next build does not buy it again.
    assert.equal(o.rebuildRequests, 0);
  });

  test("finish_reason content_filter: dropped, not retried, never an empty row", { timeout: 20_000 }, async () => {
    const o = await oneBad({ kind: "content_filter" }, {}, true);
    assert.equal(o.r.status, 0, o.r.stderr);
    assert.deepEqual(o.sample.reason, { step: "outline", why: "the endpoint's content filter stopped the answer (finish_reason content_filter)" });
    assert.equal(o.requests, 1);
    assert.equal(o.rows.length, 2);
    assert.ok(o.rows.every((row) => JSON.parse(row).messages.at(-1).content !== ""));
    assert.equal(o.rebuildRequests, 0);
  });

  test("an empty answer is dropped: 'empty answer', no training row", { timeout: 20_000 }, async () => {
    const o = await oneBad({ kind: "empty" });
    assert.equal(o.r.status, 0, o.r.stderr);
    assert.deepEqual(o.sample.reason, { step: "outline", why: "empty answer" });
    assert.equal(o.requests, 1);
    assert.equal(o.rows.length, 2);
  });

  test("on_empty: retry asks again, and the next answer is used", { timeout: 20_000 }, async () => {
    const o = await oneBad({ kind: "empty", times: 1 }, { generate: ["on_empty: retry"] });
    assert.equal(o.r.status, 0, o.r.stderr);
    assert.equal(o.sample.status, "kept");
    assert.equal(o.requests, 2);
    assert.equal(o.rows.length, 3);
  });

  test("on_empty: retry, always empty: the sample fails after its retries", { timeout: 20_000 }, async () => {
    const o = await oneBad({ kind: "empty" }, { generate: ["on_empty: retry"], retries: 2 });
    assert.equal(o.r.status, 1, o.r.stderr);
    assert.equal(o.sample.status, "failed");
    assert.equal(o.sample.reason!.why, "empty answer (on_empty: retry) (after 3 attempts)");
    assert.equal(o.requests, 3);
    assert.equal(o.cached, 2);
  });

  const failures: [string, FaultRule, RegExp, number][] = [
    ["200 with empty choices", { kind: "empty_choices" }, /^malformed answer: the response has no choices \(choices: \[\]\) \(after 2 attempts\)$/, 2],
    ["content: null", { kind: "null_content" }, /^malformed answer: message\.content null \(finish_reason \w+\) \(after 2 attempts\)$/, 2],
    [
      "an HTML page with status 200",
      { kind: "html" },
      /^the endpoint answered HTTP 200 with text\/html; charset=utf-8, not a chat completion: Sign in to the guest network$/,
      1,
    ],
    [
      "a redirect loop",
      { kind: "redirect" },
      /^the endpoint redirected to \/v1\/chat\/completions \(HTTP 302\) instead of answering; redirects are not followed/,
      1,
    ],
    ["a 50 MB body", { kind: "huge" }, /^the response is larger than 16 MiB, far more than any chat completion: refused$/, 1],
  ];
  for (const [label, rule, why, attempts] of failures) {
    test(`${label}: the sample fails with a precise reason in the lock and the summary, nothing cached for it`, { timeout: 20_000 }, async () => {
      const o = await oneBad(rule, { retries: 1 });
      assert.equal(o.r.status, 1, o.r.stderr);
      assert.equal(o.sample.status, "failed");
      assert.match(o.sample.reason!.why, why);
      assert.match(o.r.json.failures[0].reason, why);
      assert.equal(o.requests, attempts, `${o.requests} requests for the sample`);
      assert.equal(o.rows.length, 2);
      assert.equal(o.cached, 2);
    });
  }

  test("finish_reason length is kept, or dropped with filter drop_truncated", { timeout: 20_000 }, async () => {
    const truncated = { maxTokens: 3 };
    await withProject(manifest({ samples: 2, ...truncated }), {}, async ({ p, build }) => {
      const r = await build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal((await rowsOf(p)).length, 2);
    });
    await withProject(
      manifest({ samples: 2, ...truncated, steps: ["  - id: whole", "    filter: { field: outline, drop_truncated: true }"] }),
      {},
      async ({ p, build }) => {
        const r = await build();
        assert.equal(r.status, 0, r.stderr);
        assert.equal((await rowsOf(p)).length, 0);
        assert.ok((await lockOf(p)).samples.every((s) => s.reason?.why === "outline was cut off by max_tokens"));
      },
    );
  });
});

describe("no output format writes a row its consumer rejects", () => {
  test("an assistant message a map step left empty is not written: the row is left out with a warning", { timeout: 20_000 }, async () => {
    // Offline answers start "[offline echo …] In answer to: "Outline item [w01]…": a map that
    // empties the answers of one sample's.
    const m = manifest({
      samples: 3,
      steps: ["  - id: cleaned", "    map: { field: outline, replace: [{ pattern: '^[\\s\\S]*\\[w01\\][\\s\\S]*$', with: '' }] }"],
    }).replace('completion: "{{ outline }}"', 'completion: "{{ cleaned }}"');
    const p = await TempProject.create({ "dataset.yaml": m });
    try {
      const r = await runCli(["build", "--offline", "--json"], p.dir, { TEST_BASE_URL: "http://127.0.0.1:9/v1" }, 20_000);
      assert.equal(r.status, 0, r.stderr);
      const rows = await rowsOf(p);
      assert.equal(rows.length, 2);
      assert.ok(rows.every((row) => JSON.parse(row).messages.at(-1).content.trim() !== ""));
      assert.match(
        r.stderr,
        /warning: dist\/out\.jsonl: left out 1 row \(sample [0-9a-f]+\): its assistant message would be empty, which OpenAI's fine-tuning format check rejects/,
      );
      assert.deepEqual(JSON.parse(r.stdout).outputs, [{ path: "dist/out.jsonl", rows: 2 }]);
      // The lock's row count is the file's: verify agrees.
      const v = await runCli(["verify"], p.dir, { TEST_BASE_URL: "http://127.0.0.1:9/v1" }, 20_000);
      assert.equal(v.status, 0, v.stderr);
    } finally {
      await p.remove();
    }
  });
});

describe("secrets", { concurrency: false }, () => {
  test("a key echoed in a 401 and in a 400, with OPENAI_LOG=debug: nowhere in cache/, the lock, dist/, stdout or stderr", { timeout: 30_000 }, async () => {
    await withProject(manifest({ samples: 4 }), { apiKey: KEY, echoKey: true }, async ({ server, p, build }) => {
      server.inject({
        kind: "status",
        status: 400,
        match: `[${item(2)}]`,
        body: {
          error: { message: "Bad request from Authorization: Bearer {{api_key}} (key {{api_key}})", type: "invalid_request_error", param: null, code: null },
        },
      });
      const ok = await build({ OPENAI_LOG: "debug" });
      assert.equal(ok.status, 1, ok.stderr);
      // The SDK's log is on stderr; stdout holds only the JSON summary.
      assert.match(ok.stderr, /openai debug: /);
      assert.equal(ok.json.failed, 1, ok.stdout);
      assert.match(ok.json.failures[0].reason, /Authorization: \*\*\* \(key \*\*\*\)/);
      await assertNoKey(p, ok);
      // And the wrong key the endpoint echoes in its 401.
      const wrong = "sk-proj-WRONG-abcdefghijklmnop";
      await p.write({ "dataset.yaml": manifest({ samples: 6 }) });
      const r = await build({ OPENAI_API_KEY: wrong, OPENAI_LOG: "debug" });
      assertStopped(r, /the endpoint rejected the API key \(HTTP 401: Incorrect API key provided: (\*\*\*|sk-\*\*\*)/);
      await assertNoKey(p, r, wrong);
    });
  });
});
