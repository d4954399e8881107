import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Cache } from "../../src/cache/store.js";
import {
  allFiles,
  contentOf,
  type FaultManifestOptions,
  faultManifest,
  item,
  parseLockText,
  runCliBounded as runCli,
  scanCache,
  spawnCli,
  waitFor,
} from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { type FaultRule, startTestServer, type TestServer, type TestServerOptions } from "../server/openai-test-server.js";

/**
 * Faults end to end: the real binary, the real openai SDK, over HTTP to the test server, which
 * injects 429s, 500s, resets, malformed bodies and hangs, and records when each request arrived.
 */

interface Ctx {
  server: TestServer;
  p: TempProject;
  env: Record<string, string>;
  /** `build --json` in the project; stdout parsed when it is JSON */
  build: (...args: string[]) => Promise<{ status: number | null; stdout: string; stderr: string; json: any }>;
  /** a fresh project with the same manifest, built once without faults: the reference dist/ and lock */
  reference: (m: string) => Promise<{ dist: Record<string, string>; lock: string; requests: number }>;
}

/** A server and a project for one test; both are torn down afterwards whatever happens. */
async function withProject(
  manifest: string,
  serverOpts: TestServerOptions,
  fn: (c: Ctx) => Promise<void>,
  extraEnv: Record<string, string> = {},
): Promise<void> {
  const server = await startTestServer(serverOpts);
  const p = await TempProject.create({ "dataset.yaml": manifest });
  const extra: TempProject[] = [];
  const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: serverOpts.apiKey ?? "sk-test-faults", ...extraEnv };
  const parse = (s: string) => {
    try {
      return JSON.parse(s);
    } catch {
      return undefined;
    }
  };
  try {
    await fn({
      server,
      p,
      env,
      build: async (...args) => {
        const r = await runCli(["build", "--json", ...args], p.dir, env);
        return { ...r, json: parse(r.stdout) };
      },
      reference: async (m) => {
        const q = await TempProject.create({ "dataset.yaml": m });
        extra.push(q);
        server.reset();
        server.setLatency(0);
        const r = await runCli(["build"], q.dir, env);
        assert.equal(r.status, 0, `reference build failed: ${r.stderr}`);
        return { dist: await q.snapshot(), lock: await q.read("dataset.lock"), requests: server.requests.length };
      },
    });
  } finally {
    await server.close();
    await p.remove();
    for (const q of extra) await q.remove();
  }
}

const rowsOf = async (p: TempProject) => (await p.read("dist/out.jsonl").catch(() => "")).split("\n").filter(Boolean).length;
const m = (o: FaultManifestOptions) => faultManifest(o);

describe("faults", { concurrency: false }, () => {
  for (const [label, rule, expectMs] of [
    ["retry-after-ms: 700", { kind: "status", status: 429, times: 1, retryAfterMs: 700 }, 700],
    ["retry-after: 1 (seconds)", { kind: "status", status: 429, times: 1, retryAfter: 1 }, 1000],
  ] as const) {
    test(`429 with ${label}: retried once, no earlier than the server asked`, { timeout: 20_000 }, async () => {
      await withProject(m({ samples: 1 }), {}, async ({ server, build, p }) => {
        server.inject(rule as FaultRule);
        const r = await build();
        assert.equal(r.status, 0, r.stderr);
        assert.equal(server.requests.length, 2, `expected the 429 and one retry; got ${server.requests.length}`);
        assert.equal(server.requests[0]!.status, 429);
        assert.equal(server.requests[1]!.status, 200);
        const gap = server.requests[1]!.at - server.requests[0]!.at;
        assert.ok(gap >= expectMs - 50, `retried after ${gap} ms; the server asked for ${expectMs} ms`);
        assert.ok(gap <= expectMs + 800, `retried after ${gap} ms; the server asked for only ${expectMs} ms`);
        assert.equal(await rowsOf(p), 1);
      });
    });
  }

  test("500 bursts: every sample built, each 500 retried once", { timeout: 20_000 }, async () => {
    await withProject(m({ samples: 6 }), {}, async ({ server, build, p }) => {
      server.inject({ kind: "status", status: 500, times: 3 });
      const r = await build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(server.stats().faulted, 3);
      assert.equal(server.requests.length, 6 + 3);
      assert.equal(r.json.failed, 0);
      assert.equal(await rowsOf(p), 6);
    });
  });

  test("connection resets: retried, every sample built", { timeout: 20_000 }, async () => {
    await withProject(m({ samples: 6 }), {}, async ({ server, build, p }) => {
      server.inject({ kind: "reset", times: 2 });
      const r = await build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(server.stats().faulted, 2);
      assert.equal(server.requests.length, 6 + 2);
      assert.equal(await rowsOf(p), 6);
    });
  });

  test("malformed JSON bodies: retried, never cached, every sample built", { timeout: 20_000 }, async () => {
    await withProject(m({ samples: 6 }), {}, async (c) => {
      c.server.inject({ kind: "malformed", times: 2 });
      const r = await c.build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(c.server.stats().faulted, 2);
      assert.equal(c.server.requests.length, 6 + 2);
      assert.equal(await rowsOf(c.p), 6);
      const scan = await scanCache(c.p.dir);
      assert.equal(scan.corrupt.length, 0, `corrupt cache entries: ${scan.corrupt.join(", ")}`);
      const dist = await c.p.snapshot();
      const ref = await c.reference(m({ samples: 6 }));
      assert.deepEqual(dist, ref.dist, "a malformed body left its mark in dist/");
    });
  });

  test("a hanging request times out after timeout_s and is retried", { timeout: 20_000 }, async () => {
    await withProject(m({ samples: 1, timeoutS: 1, retries: 2 }), {}, async ({ server, build, p }) => {
      server.inject({ kind: "hang", times: 1 });
      const r = await build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(server.requests.length, 2, `expected the hung request and one retry; got ${server.requests.length}`);
      assert.equal(server.requests[0]!.status, 0, "the first request should never have been answered");
      const gap = server.requests[1]!.at - server.requests[0]!.at;
      // timeout_s (1 s) plus the first backoff (250–500 ms, jittered).
      assert.ok(gap >= 950, `retried after ${gap} ms, before the 1 s timeout`);
      assert.ok(gap <= 1000 + 500 + 800, `retried after ${gap} ms; the timeout is 1 s`);
      assert.equal(await rowsOf(p), 1);
    });
  });

  test("a 400 fails one sample only; the next build requests just that sample", { timeout: 20_000 }, async () => {
    const manifest = m({ samples: 5, twoSteps: true });
    await withProject(manifest, {}, async ({ server, build, p }) => {
      server.inject({ kind: "status", status: 400, match: `[${item(3)}]` });
      const r = await build();
      assert.equal(r.status, 1, `expected exit 1; stderr: ${r.stderr}`);
      const lock = parseLockText(await p.read("dataset.lock"));
      const failed = lock.samples.find((s) => s.values.item === item(3));
      assert.ok(failed, "the failing sample is missing from the lock");
      assert.equal(failed.status, "failed");
      assert.equal(failed.reason?.step, "outline");
      assert.ok(
        lock.samples.filter((s) => s.values.item !== item(3)).every((s) => s.status === "kept"),
        "other samples should be kept",
      );
      assert.match(r.stderr, new RegExp(`${failed.id} at outline`), "stderr should name the sample and its step");
      assert.match(r.stderr, /400/);
      assert.ok((await p.read("dataset.lock")).includes('"status":"failed"'), "the lock should say failed");
      // 400 is final: one request for the failing sample, none for its second step.
      assert.equal(server.requests.length, 5 * 2 - 1);
      assert.equal(await rowsOf(p), 4);
      assert.equal(r.json?.failed, 1);

      server.reset();
      const again = await build();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(server.requests.length, 2, `expected only the failed sample's two requests, got ${server.requests.length}`);
      assert.ok(
        server.requests.every((q) => contentOf(q.body).includes(`[${item(3)}]`)),
        "a request for another sample was made",
      );
      assert.equal(await rowsOf(p), 5);
      assert.equal(parseLockText(await p.read("dataset.lock")).samples.find((s) => s.id === failed.id)?.status, "kept");
    });
  });

  test("mixed faults at concurrency 8: every sample built; the rebuild makes no request", { timeout: 40_000 }, async () => {
    const manifest = m({ samples: 40, twoSteps: true, concurrency: 8, retries: 6 });
    await withProject(manifest, {}, async (c) => {
      const faults: FaultRule[] = [
        { kind: "status", status: 429, times: 6, retryAfterMs: 100 },
        { kind: "status", status: 500, times: 6 },
        { kind: "reset", times: 4 },
        { kind: "malformed", times: 4 },
      ];
      for (const f of faults) c.server.inject(f);
      const r = await c.build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.equal(await rowsOf(c.p), 40);
      assert.equal(c.server.stats().faulted, 20);
      assert.equal(c.server.requests.length, 80 + 20);
      const dist = await c.p.snapshot();
      const lock = await c.p.read("dataset.lock");

      c.server.reset();
      const again = await c.build();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(c.server.requests.length, 0);
      assert.deepEqual(await c.p.snapshot(), dist);

      const ref = await c.reference(manifest);
      assert.equal(ref.requests, 80);
      assert.deepEqual(dist, ref.dist, "dist/ after faults differs from a clean build");
      assert.equal(lock, ref.lock, "dataset.lock after faults differs from a clean build");
    });
  });

  test("retries are the scheduler's alone: retries: 2 means exactly 3 requests", { timeout: 20_000 }, async () => {
    await withProject(m({ samples: 1, retries: 2 }), {}, async ({ server, build, p }) => {
      server.inject({ kind: "status", status: 500, times: 100 });
      const r = await build();
      assert.equal(r.status, 1, `expected exit 1; stderr: ${r.stderr}`);
      assert.equal(server.requests.length, 3, `the SDK must not retry on its own: ${server.requests.length} requests`);
      const lock = parseLockText(await p.read("dataset.lock"));
      assert.equal(lock.samples[0]!.status, "failed");
      assert.match(r.stderr, new RegExp(`${lock.samples[0]!.id} at outline: .*HTTP 500`));
      assert.match(r.stderr, /after 3 attempts/);
    });
  });

  test("SIGINT: exit 130, nothing written, finished answers cached; the next build requests only the rest", { timeout: 40_000 }, async () => {
    const N = 30;
    const manifest = m({ samples: N, concurrency: 2 });
    await withProject(manifest, { latencyMs: 300 }, async (c) => {
      const run = spawnCli(["build"], c.p.dir, c.env);
      await waitFor(() => c.server.stats().answered >= 4, 20_000, "4 answers");
      run.child.kill("SIGINT");
      const r = await run.done;
      assert.equal(r.status, 130, `expected exit 130; signal ${r.signal}; stderr: ${r.stderr}`);
      assert.match(r.stderr, /interrupt/);

      // A build that stops early writes no release: no lock, no dist/ (there was none before).
      assert.equal(await c.p.exists("dataset.lock"), false, "an interrupted build wrote a lock");
      assert.deepEqual(await c.p.snapshot(), {}, "an interrupted build wrote dist/");
      const scan = await scanCache(c.p.dir);
      assert.equal(scan.corrupt.length, 0, `corrupt: ${scan.corrupt.join(", ")}`);
      const answered = scan.valid.length;
      assert.ok(answered >= 4 && answered < N, `cached ${answered} of ${N}`);

      c.server.reset();
      c.server.setLatency(0);
      const again = await c.build();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(c.server.requests.length, N - answered, "the resumed build re-requested finished answers");
      const dist = await c.p.snapshot();
      const lockText = await c.p.read("dataset.lock");

      const ref = await c.reference(manifest);
      assert.equal(ref.requests, N);
      assert.deepEqual(dist, ref.dist, "dist/ after an interrupted build differs from an uninterrupted one");
      assert.equal(lockText, ref.lock, "dataset.lock after an interrupted build differs from an uninterrupted one");
    });
  });

  test("SIGINT during a rebuild leaves the previous release (dist/ and lock) byte for byte", { timeout: 40_000 }, async () => {
    await withProject(m({ samples: 4, concurrency: 2 }), {}, async (c) => {
      assert.equal((await c.build()).status, 0);
      const before = { dist: await c.p.snapshot(), lock: await c.p.read("dataset.lock") };
      await c.p.write({ "dataset.yaml": m({ samples: 30, concurrency: 2 }) });
      c.server.setLatency(300);
      const run = spawnCli(["build"], c.p.dir, c.env);
      await waitFor(() => c.server.stats().answered >= 6, 20_000, "2 new answers");
      run.child.kill("SIGINT");
      const r = await run.done;
      assert.equal(r.status, 130, r.stderr);
      assert.deepEqual(await c.p.snapshot(), before.dist, "an interrupted rebuild replaced dist/");
      assert.equal(await c.p.read("dataset.lock"), before.lock, "an interrupted rebuild replaced the lock");
    });
  });

  test("kill -9 mid-build: no corrupt entry, stray temp files harmless, only the missing answers requested", { timeout: 40_000 }, async (t) => {
    const N = 30;
    const CONCURRENCY = 2;
    const manifest = m({ samples: N, concurrency: CONCURRENCY });
    await withProject(manifest, { latencyMs: 300 }, async (c) => {
      const ref = await c.reference(manifest);
      const refKeys = parseLockText(ref.lock).samples.map((s) => s.steps.outline!.key!);

      c.server.reset(); // latency back to 300 ms
      const threshold = 3 + Math.floor(Math.random() * 10);
      const run = spawnCli(["build"], c.p.dir, c.env);
      await waitFor(() => c.server.stats().answered >= threshold, 20_000, `${threshold} answers`);
      // Kill at a random moment while the next requests are in flight (answers take 300 ms). Not in
      // the first few ms after an answer: the scheduler frees the slot (and the next request goes
      // out) before that answer's cache write finishes, so a kill exactly then loses one more answer
      // than "in flight" accounts for, and the bound below would be off by up to the concurrency.
      const jitter = 20 + Math.floor(Math.random() * 230);
      t.diagnostic(`SIGKILL ${jitter} ms after answer ${threshold}`);
      await new Promise((res) => setTimeout(res, jitter));
      run.child.kill("SIGKILL");
      const r = await run.done;
      assert.equal(r.signal, "SIGKILL");
      const firstRun = c.server.requests.length;

      const scan = await scanCache(c.p.dir);
      assert.equal(scan.corrupt.length, 0, `corrupt after kill -9: ${scan.corrupt.join(", ")}`);
      const before = scan.valid.length;
      assert.ok(before >= 1 && before < N, `${before} answers cached before the kill`);
      assert.ok(firstRun <= before + CONCURRENCY, `first run: ${firstRun} requests for ${before} cached answers`);

      // A writer killed between its temp file and the rename leaves a stray: make two by hand.
      const missing = refKeys.filter((k) => !scan.valid.includes(k));
      const stray1 = join(c.p.dir, "cache", "objects", missing[0]!.slice(0, 2), `${missing[0]}.json.tmp-99999-deadbeef`);
      const stray2 = join(c.p.dir, "cache", "objects", "zz", `zzzz.json.tmp-99998-0badf00d`);
      for (const s of [stray1, stray2]) {
        await mkdir(join(s, ".."), { recursive: true });
        await writeFile(s, '{"format":1,"key":"' + missing[0] + '","request":{"mod');
      }

      c.server.reset();
      c.server.setLatency(0);
      const again = await c.build();
      assert.equal(again.status, 0, again.stderr);
      assert.equal(c.server.requests.length, N - before, "only the missing answers should be requested");
      assert.ok(firstRun + c.server.requests.length <= N + CONCURRENCY, `${firstRun} + ${c.server.requests.length} requests for ${N} answers`);
      assert.equal(await c.p.exists(".dataset.building"), false, "the build lock is still there");

      const after = await scanCache(c.p.dir);
      assert.equal(after.corrupt.length, 0, `corrupt: ${after.corrupt.join(", ")}`);
      assert.equal(after.other.length, 0, `unexpected files: ${after.other.join(", ")}`);
      for (const k of refKeys) assert.ok(after.valid.includes(k), `answer ${k} missing from the cache`);
      assert.deepEqual(await c.p.snapshot(), ref.dist, "dist/ after kill -9 and rebuild differs from an uninterrupted build");
      assert.equal(await c.p.read("dataset.lock"), ref.lock, "dataset.lock after kill -9 and rebuild differs from an uninterrupted build");

      const v = await runCli(["verify"], c.p.dir, c.env);
      assert.equal(v.status, 0, `verify with stray temp files: ${v.stderr}`);
      const g = await runCli(["gc", "--json"], c.p.dir, c.env);
      assert.equal(g.status, 0, g.stderr);
      assert.equal((await scanCache(c.p.dir)).strays.length, 0, "gc should remove stray temp files");
      assert.equal((await runCli(["verify"], c.p.dir, c.env)).status, 0, "verify after gc");
    });
  });

  test("two builds at once: one waits, both succeed, one build's worth of requests", { timeout: 40_000 }, async () => {
    const N = 16;
    const manifest = m({ samples: N, concurrency: 2 });
    await withProject(manifest, { latencyMs: 300 }, async (c) => {
      const a = spawnCli(["build"], c.p.dir, c.env);
      const b = spawnCli(["build"], c.p.dir, c.env);
      const [ra, rb] = await Promise.all([a.done, b.done]);
      assert.equal(ra.status, 0, ra.stderr);
      assert.equal(rb.status, 0, rb.stderr);
      assert.ok(/waiting for another build/.test(ra.stderr + rb.stderr), `neither build waited:\n${ra.stderr}\n---\n${rb.stderr}`);
      assert.equal(c.server.requests.length, N, `two builds made ${c.server.requests.length} requests for ${N} samples`);
      const dist = await c.p.snapshot();
      const lock = await c.p.read("dataset.lock");
      const ref = await c.reference(manifest);
      assert.deepEqual(dist, ref.dist);
      assert.equal(lock, ref.lock);
    });
  });

  test("--max-cost stops starting requests before the budget", { timeout: 20_000 }, async () => {
    const N = 20;
    const PRICE = 1000; // USD per million tokens: $0.001 a token
    const MAX = 0.5;
    await withProject(m({ samples: N, concurrency: 4, maxTokens: 40, price: { input: PRICE, output: PRICE } }), {}, async ({ server, build, p }) => {
      const r = await build("--max-cost", String(MAX));
      assert.equal(r.status, 1, `expected exit 1; stderr: ${r.stderr}`);
      assert.match(r.stderr, /--max-cost/);
      const made = server.requests.length;
      assert.ok(made > 0 && made < N, `${made} requests for ${N} samples under --max-cost ${MAX}`);
      const scan = await scanCache(p.dir);
      const cache = new Cache(join(p.dir, "cache"));
      const costs: number[] = [];
      for (const key of scan.valid) {
        const u = (await cache.get(key))!.response.usage!;
        costs.push(((u.input_tokens + u.output_tokens) * PRICE) / 1e6);
      }
      cache.close();
      assert.equal(scan.valid.length, made, "every request made should have been answered and cached");
      const spent = costs.reduce((a, b) => a + b, 0);
      const one = Math.max(...costs);
      assert.ok(spent <= MAX + one + 1e-9, `spent $${spent.toFixed(4)} with --max-cost ${MAX} (one request ≈ $${one.toFixed(4)})`);
      const lock = parseLockText(await p.read("dataset.lock"));
      assert.equal(lock.header.pending, N - made);
      assert.equal(await rowsOf(p), made);
    });
  });

  test("the API key appears nowhere: cache, dist, lock, stdout, stderr", { timeout: 30_000 }, async () => {
    const KEY = `sk-faults-${randomUUID()}`;
    await withProject(m({ samples: 6, twoSteps: true }), { apiKey: KEY }, async (c) => {
      c.server.inject({ kind: "status", status: 429, times: 1, retryAfterMs: 50 });
      c.server.inject({ kind: "status", status: 500, times: 2 });
      c.server.inject({ kind: "reset", times: 1 });
      c.server.inject({ kind: "malformed", times: 1 });
      const r = await c.build();
      assert.equal(r.status, 0, r.stderr);
      assert.equal(c.server.stats().faulted, 5);
      assert.ok(
        c.server.requests.every((q) => q.headers.authorization === `Bearer ${KEY}`),
        "the key did not reach the server",
      );
      const files = await allFiles(c.p.dir);
      assert.ok(
        Object.keys(files).some((f) => f.startsWith("cache/")) && "dataset.lock" in files && "dist/out.jsonl" in files,
        `files: ${Object.keys(files).join(", ")}`,
      );
      for (const [path, text] of Object.entries(files)) assert.ok(!text.includes(KEY), `${path} contains the API key`);
      assert.ok(!r.stdout.includes(KEY), "stdout contains the API key");
      assert.ok(!r.stderr.includes(KEY), "stderr contains the API key");

      // A rejected key (401) is not echoed either.
      const WRONG = `sk-wrong-${randomUUID()}`;
      const q = await TempProject.create({ "dataset.yaml": m({ samples: 2 }) });
      try {
        const bad = await runCli(["build", "--json"], q.dir, { ...c.env, OPENAI_API_KEY: WRONG });
        assert.equal(bad.status, 1, `expected exit 1 on 401; stderr: ${bad.stderr}`);
        assert.match(bad.stderr, /401/);
        assert.ok(!bad.stdout.includes(WRONG) && !bad.stderr.includes(WRONG), "the rejected key was printed");
        for (const [path, text] of Object.entries(await allFiles(q.dir))) assert.ok(!text.includes(WRONG), `${path} contains the rejected key`);
      } finally {
        await q.remove();
      }
    });
  });
});
