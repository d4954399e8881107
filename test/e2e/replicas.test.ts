import assert from "node:assert/strict";
import { createServer } from "node:net";
import { describe, test } from "node:test";
import { allFiles, item, runCliBounded as runCli, waitFor } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer, type TestServerOptions } from "../server/openai-test-server.js";

/**
 * `model.endpoints:` end to end: the real binary and the real openai SDK over HTTP to three test
 * servers on three ports. Requests spread over the replicas within each one's concurrency; a
 * replica that is dead, dies, refuses the key or is full is left out and the others answer;
 * only every replica lost stops the build; the list is not part of any cache key.
 */

const KEY = "sk-test-REPLICAS0123456789abcdefXYZ";

interface Entry {
  url: string;
  concurrency?: number;
  /** more keys of the entry, as YAML flow text */
  extra?: string;
}

function manifest(o: { samples: number; endpoints: Entry[]; endpointId?: string | null; concurrency?: number; retries?: number; mode?: string }): string {
  const items = Array.from({ length: o.samples }, (_, i) => item(i)).join(", ");
  const ep = o.endpoints.map((e) =>
    e.concurrency || e.extra
      ? `    - { base_url: "${e.url}"${e.concurrency ? `, concurrency: ${e.concurrency}` : ""}${e.extra ? `, ${e.extra}` : ""} }`
      : `    - ${e.url}`,
  );
  return [
    "version: 1",
    "name: replicas",
    "seed: 7",
    "model:",
    "  provider: openai",
    "  name: test-model",
    "  endpoints:",
    ...ep,
    ...(o.endpointId === null ? [] : [`  endpoint_id: ${o.endpointId ?? "test-pool"}`]),
    "  params: { temperature: 1, max_tokens: 40 }",
    `  concurrency: ${o.concurrency ?? 2}`,
    `  retries: ${o.retries ?? 6}`,
    "  timeout_s: 10",
    ...(o.mode ? [`  mode: ${o.mode}`] : []),
    "dimensions:",
    `  item: [${items}]`,
    "steps:",
    "  - id: outline",
    "    generate:",
    `      prompt: "Outline item [{{ item }}] briefly."`,
    "output:",
    "  path: dist/out.jsonl",
    "  format: openai-chat",
    `  prompt: "Item {{ item }}"`,
    `  completion: "{{ outline }}"`,
    "",
  ].join("\n");
}

async function servers(opts: TestServerOptions[]): Promise<TestServer[]> {
  return Promise.all(opts.map((o) => startTestServer(o)));
}

async function closeAll(ss: TestServer[]): Promise<void> {
  await Promise.all(ss.map((s) => s.close().catch(() => {})));
}

async function build(p: TempProject, env: Record<string, string> = {}) {
  const r = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: KEY, ...env }, 30_000);
  let json: any;
  try {
    json = JSON.parse(r.stdout);
  } catch {
    json = undefined;
  }
  return { ...r, json };
}

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

const answered = (s: TestServer) => s.requests.filter((r) => r.status === 200).length;
const rowsOf = async (p: TempProject) => (await p.read("dist/out.jsonl")).split("\n").filter(Boolean);

describe("model.endpoints: replicas", { concurrency: false }, () => {
  test("requests spread over three replicas, each within its own concurrency", { timeout: 30_000 }, async () => {
    const ss = await servers([{ latencyMs: 60 }, { latencyMs: 60 }, { latencyMs: 60 }]);
    const p = await TempProject.create({
      "dataset.yaml": manifest({ samples: 36, endpoints: ss.map((s, i) => ({ url: s.baseURL, concurrency: i + 1 })) }),
    });
    try {
      const r = await build(p);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.equal(r.json.requests, 36);
      ss.forEach((s, i) => {
        assert.ok(answered(s) > 0, `replica ${i} got no request`);
        assert.ok(s.stats().maxInFlight <= i + 1, `replica ${i} had ${s.stats().maxInFlight} in flight, its concurrency is ${i + 1}`);
      });
      // Least loaded per slot: the replica with three slots takes more than the one with one.
      assert.ok(answered(ss[2]!) > answered(ss[0]!), `${ss.map(answered)}`);
      assert.equal(answered(ss[0]!) + answered(ss[1]!) + answered(ss[2]!), 36);
      // The build says who answered what, and it is what the servers saw.
      assert.deepEqual(
        r.json.replicas.map((x: { answers: number }) => x.answers),
        ss.map(answered),
      );
      assert.ok(r.stderr.includes(`answers by replica: ${ss.map((s) => `${s.baseURL} ${answered(s)}`).join(", ")}`), r.stderr);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("a replica dead from the start: the build succeeds on the others and says it is out", { timeout: 30_000 }, async () => {
    const port = await deadPort();
    const ss = await servers([{ latencyMs: 20 }, { latencyMs: 20 }]);
    const dead = `http://127.0.0.1:${port}/v1`;
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 24, endpoints: [{ url: dead }, ...ss.map((s) => ({ url: s.baseURL }))] }) });
    try {
      const r = await build(p);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.equal((await rowsOf(p)).length, 24);
      assert.match(r.stderr, new RegExp(`replica http://127\\.0\\.0\\.1:${port}/v1 is out: connection refused`));
      assert.equal(answered(ss[0]!) + answered(ss[1]!), 24);
      assert.equal(r.json.replicas.find((x: { url: string }) => x.url === dead).answers, 0);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("a replica out is probed again later, and used once it answers", { timeout: 30_000 }, async () => {
    const port = await deadPort();
    const ss = await servers([{ latencyMs: 100 }, { latencyMs: 100 }]);
    const late = `http://127.0.0.1:${port}/v1`;
    const p = await TempProject.create({
      "dataset.yaml": manifest({ samples: 60, concurrency: 1, endpoints: [{ url: late }, ...ss.map((s) => ({ url: s.baseURL }))] }),
    });
    let revived: TestServer | undefined;
    try {
      const run = build(p);
      // Out within its first attempts; back before the 2 s probe; the others need 3 s for 60 samples.
      await waitFor(() => answered(ss[0]!) + answered(ss[1]!) >= 4, 15_000, "the live replicas to answer");
      revived = await startTestServer({ port, latencyMs: 100 });
      const r = await run;
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.match(r.stderr, new RegExp(`replica ${late.replace(/[.]/g, "\\.")} is out: connection refused`));
      assert.match(r.stderr, new RegExp(`replica ${late.replace(/[.]/g, "\\.")} answers again`));
      assert.ok(answered(revived) > 0, "the replica that came back got no request");
      assert.equal(answered(revived) + answered(ss[0]!) + answered(ss[1]!), 60);
    } finally {
      await closeAll([...ss, ...(revived ? [revived] : [])]);
      await p.remove();
    }
  });

  test("a replica killed mid-build: its requests in flight are answered by the others, none fails", { timeout: 30_000 }, async () => {
    const ss = await servers([{ latencyMs: 100 }, { latencyMs: 100 }, { latencyMs: 100 }]);
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 30, concurrency: 2, endpoints: ss.map((s) => ({ url: s.baseURL })) }) });
    try {
      const run = build(p);
      // Killed once it has answered and has requests on the wire.
      await waitFor(() => answered(ss[0]!) >= 2 && ss[0]!.stats().inFlight > 0, 15_000, "replica 0 to answer and have requests in flight");
      await ss[0]!.close();
      const r = await run;
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.equal((await rowsOf(p)).length, 30);
      const cut = ss[0]!.requests.filter((q) => q.status === 0).length;
      assert.ok(cut > 0, "no request was in flight at the replica when it died");
      // Every sample was answered once: the ones cut off were asked again elsewhere.
      assert.equal(answered(ss[0]!) + answered(ss[1]!) + answered(ss[2]!), 30);
      assert.match(r.stderr, /replica http:\/\/127\.0\.0\.1:\d+\/v1 is out/);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("every replica dead: exit 1 soon, with one message naming them all", { timeout: 30_000 }, async () => {
    const ports = [await deadPort(), await deadPort(), await deadPort()];
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 12, endpoints: ports.map((port) => ({ url: `http://127.0.0.1:${port}/v1` })) }) });
    try {
      const t0 = Date.now();
      const r = await build(p);
      const took = Date.now() - t0;
      assert.equal(r.status, 1, r.stderr);
      const errors = r.stderr.split("\n").filter((l) => l.startsWith("error:"));
      assert.equal(errors.length, 1, r.stderr);
      const [a, b, c] = ports.map((port) => `http://127.0.0.1:${port}/v1`);
      assert.equal(errors[0]!.split(": connection refused at each of the 3 replicas")[0], `error: cannot reach ${a}, ${b} and ${c}`);
      assert.match(r.stderr, /hint: is the server running, and is model\.endpoints right\?/);
      assert.doesNotMatch(r.stderr, /failed at/);
      assert.equal(await p.exists("dataset.lock"), false);
      // The breakers' 2 s of silence and a probe or two, not 12 samples × 7 attempts of backoff.
      assert.ok(took < 15_000, `took ${took} ms`);
    } finally {
      await p.remove();
    }
  });

  test("a replica refusing the key is taken out with a warning; the others build", { timeout: 30_000 }, async () => {
    const ss = await servers([{ apiKey: "sk-some-other-key", echoKey: true }, {}, {}]);
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 12, endpoints: ss.map((s) => ({ url: s.baseURL })) }) });
    try {
      const r = await build(p);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      const warnings = r.stderr.match(/warning: replica http:\/\/127\.0\.0\.1:\d+\/v1 is out for this build: the endpoint rejected the API key/g) ?? [];
      assert.equal(warnings.length, 1, r.stderr);
      assert.equal(answered(ss[1]!) + answered(ss[2]!), 12);
      assert.ok(!r.stderr.includes(KEY), "the key is on stderr");
      // Taken out at its first refusal: no request after it went there.
      assert.ok(ss[0]!.requests.length <= 2, `${ss[0]!.requests.length} requests to the refusing replica`);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("a replica with its own api_key_env and headers: each replica is sent its own", { timeout: 30_000 }, async () => {
    const other = "sk-test-OTHERKEY9876543210zyxwvu";
    const ss = await servers([{ apiKey: KEY }, { apiKey: other }]);
    const p = await TempProject.create({
      "dataset.yaml": manifest({
        samples: 8,
        endpoints: [{ url: ss[0]!.baseURL }, { url: ss[1]!.baseURL, extra: "api_key_env: OTHER_KEY, headers: { x-replica: two }" }],
      }),
    });
    try {
      const r = await build(p, { OTHER_KEY: other });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.ok(answered(ss[0]!) > 0 && answered(ss[1]!) > 0, `${ss.map(answered)}`);
      assert.ok(ss[1]!.requests.every((q) => q.headers["x-replica"] === "two"));
      assert.ok(ss[0]!.requests.every((q) => q.headers["x-replica"] === undefined));
      for (const [path, text] of Object.entries(await allFiles(p.dir))) assert.ok(!text.includes(other), `the replica's key is in ${path}`);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("mode: batch over replicas: the Batch API is sent the first replica's own key, never OPENAI_API_KEY", { timeout: 30_000 }, async () => {
    const other = "sk-test-OTHERKEY9876543210zyxwvu";
    // The first replica takes only its own key (a 401 for any other, the Files and Batches APIs too).
    const ss = await servers([{ apiKey: other, batchStepMs: 20 }, { apiKey: KEY }]);
    const p = await TempProject.create({
      "dataset.yaml": manifest({
        samples: 4,
        mode: "batch",
        endpoints: [{ url: ss[0]!.baseURL, extra: "api_key_env: OTHER_KEY" }, { url: ss[1]!.baseURL }],
      }),
    });
    try {
      const r = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: KEY, OTHER_KEY: other, SYNTHBUILD_BATCH_POLL_MS: "20" }, 30_000);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(ss[0]!.batches.counts.batchesCreated, 1, "the batch went to the first replica, with its key");
      assert.equal(ss[1]!.batches.counts.batchesCreated, 0);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("replicas refusing the key: the hint names the replicas' own api_key_env", { timeout: 30_000 }, async () => {
    const ss = await servers([{ apiKey: "sk-other-1" }, { apiKey: "sk-other-2" }]);
    const p = await TempProject.create({
      "dataset.yaml": manifest({ samples: 4, endpoints: ss.map((s) => ({ url: s.baseURL, extra: "api_key_env: OTHER_KEY" })) }),
    });
    try {
      const r = await build(p, { OTHER_KEY: "sk-wrong" });
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /check OTHER_KEY/);
      assert.doesNotMatch(r.stderr, /OPENAI_API_KEY/);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("every replica refusing the key stops the build as one endpoint does", { timeout: 30_000 }, async () => {
    const ss = await servers([{ apiKey: "sk-other-1" }, { apiKey: "sk-other-2" }]);
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 6, endpoints: ss.map((s) => ({ url: s.baseURL })) }) });
    try {
      const r = await build(p);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /error: the endpoint rejected the API key/);
      assert.equal(await p.exists("dataset.lock"), false);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("a replica answering 429 (full) sends requests to the others; none fails", { timeout: 30_000 }, async () => {
    const ss = await servers([{ latencyMs: 80, maxInFlight: 1 }, { latencyMs: 80 }]);
    const p = await TempProject.create({
      "dataset.yaml": manifest({
        samples: 24,
        endpoints: [
          { url: ss[0]!.baseURL, concurrency: 4 },
          { url: ss[1]!.baseURL, concurrency: 4 },
        ],
      }),
    });
    try {
      const r = await build(p);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.ok(ss[0]!.stats().refused429 > 0, "the full replica refused nothing: the test proves nothing");
      assert.equal(answered(ss[0]!) + answered(ss[1]!), 24);
      assert.ok(answered(ss[1]!) > answered(ss[0]!), `${ss.map(answered)}`);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("adding or removing a replica re-keys nothing: the build is up to date, 0 requests", { timeout: 30_000 }, async () => {
    const ss = await servers([{}, {}, {}]);
    const [a, b, c] = ss.map((s) => ({ url: s.baseURL }));
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 8, endpoints: [a!, b!] }) });
    try {
      const first = await build(p);
      assert.equal(first.status, 0, first.stderr);
      assert.equal(first.json.requests, 8);
      const keys = await p.cacheKeys();
      const lock = await p.read("dataset.lock");
      // Added, then removed down to one that never answered any of them.
      for (const endpoints of [[b!, a!, c!], [c!]]) {
        await p.write({ "dataset.yaml": manifest({ samples: 8, endpoints }) });
        const again = await build(p);
        assert.equal(again.status, 0, again.stderr);
        assert.equal(again.json.requests, 0, `${endpoints.length} replicas: ${again.stderr}`);
        assert.deepEqual(await p.cacheKeys(), keys);
        assert.equal(await p.read("dataset.lock"), lock);
      }
      assert.equal(
        ss.reduce((n, s) => n + s.requests.length, 0),
        8,
      );
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });

  test("base_url → endpoints with the endpoint_id the hint names: the answers are kept", { timeout: 30_000 }, async () => {
    const ss = await servers([{}, {}]);
    const single = manifest({ samples: 6, endpoints: [{ url: ss[0]!.baseURL }], endpointId: null });
    const p = await TempProject.create({ "dataset.yaml": single.replace(/ {2}endpoints:\n {4}- (\S+)\n/, "  base_url: $1\n") });
    try {
      assert.match(await p.read("dataset.yaml"), /base_url: http/);
      const first = await build(p);
      assert.equal(first.status, 0, first.stderr);
      assert.equal(first.json.requests, 6);
      // Two replicas and no endpoint_id: a load error whose hint says which one keeps the answers.
      await p.write({ "dataset.yaml": manifest({ samples: 6, endpoints: ss.map((s) => ({ url: s.baseURL })), endpointId: null }) });
      const refused = await build(p);
      assert.equal(refused.status, 2, refused.stderr);
      assert.match(refused.stderr, /endpoints lists 2 replicas but no endpoint_id names them/);
      const id = /endpoint_id: "([^"]+)" keeps the answers/.exec(refused.stderr)?.[1];
      assert.equal(id, ss[0]!.baseURL);
      await p.write({ "dataset.yaml": manifest({ samples: 6, endpoints: ss.map((s) => ({ url: s.baseURL })), endpointId: `"${id}"` }) });
      const again = await build(p);
      assert.equal(again.status, 0, again.stderr);
      assert.equal(again.json.requests, 0, again.stderr);
    } finally {
      await closeAll(ss);
      await p.remove();
    }
  });
});
