/**
 * Idle batches: a batch none of whose requests the edited manifest makes is asked once by every
 * build (a no-op too) and, once done, collected. Faults of the endpoint, Ctrl-C, keys, --frozen
 * and --offline, and caches shared by two manifests, end to end through the CLI (from an
 * adversarial review: each test failed on the first version).
 */
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { batchFiles, batchFixture, chatRequests, manifest, POLL } from "../helpers/batch.js";
import { allFiles, runCliBounded as runCli, spawnCli, waitFor } from "../helpers/faults.js";
import type { TempProject } from "../helpers/project.js";
import type { TestServer } from "../server/openai-test-server.js";

/**
 * A front for the test server (its address is the manifest's base_url, so it is part of every
 * cache key from the first build): counts the calls of the Files and Batches APIs, and can make
 * GET /v1/batches/<id> hang (an endpoint that accepts and never answers).
 */
async function front(s: TestServer): Promise<{
  baseURL: string;
  state: { hangRetrieve: boolean; batchCalls: string[]; rewriteRetrieve?: (b: Record<string, unknown>) => Record<string, unknown> };
  close(): Promise<void>;
}> {
  const target = new URL(s.baseURL);
  const state: { hangRetrieve: boolean; batchCalls: string[]; rewriteRetrieve?: (b: Record<string, unknown>) => Record<string, unknown> } = {
    hangRetrieve: false,
    batchCalls: [],
  };
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url!, "http://x").pathname;
    const batchApi = /\/v1\/(batches|files)/.test(path);
    if (batchApi) state.batchCalls.push(`${req.method} ${path}`);
    if (batchApi && state.hangRetrieve && req.method === "GET" && /^\/v1\/batches\/[^/]+$/.test(path)) return void req.resume();
    const rewrite = batchApi && req.method === "GET" && /^\/v1\/batches\/[^/]+$/.test(path) ? state.rewriteRetrieve : undefined;
    const up = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (r) => {
      if (!rewrite || r.statusCode !== 200) {
        res.writeHead(r.statusCode ?? 502, r.headers);
        return void r.pipe(res);
      }
      let text = "";
      r.on("data", (d) => (text += d));
      r.on("end", () => {
        const body = JSON.stringify(rewrite(JSON.parse(text)));
        res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(body) });
        res.end(body);
      });
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    state,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** The batch ids the records of this project's cache hold. */
async function recordIds(p: TempProject, cacheDir = join(p.dir, "cache")): Promise<string[]> {
  const dir = join(cacheDir, "state", "batches");
  const names = (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
  return Promise.all(names.map(async (n) => JSON.parse(await readFile(join(dir, n), "utf8")).batch_id as string));
}

/**
 * A build in batch mode interrupted (Ctrl-C) once its batches are created and recorded: they keep
 * running at the endpoint. `n`: how many batches to wait for.
 */
async function interruptAfterCreate(s: TestServer, p: TempProject, env: Record<string, string>, n = 1, cacheDir?: string): Promise<string[]> {
  const b = spawnCli(["build"], p.dir, env, 30_000);
  await waitFor(() => s.batches.counts.batchesCreated >= n, 15_000, "the batches to be created");
  const t0 = Date.now();
  for (;;) {
    const ids = await recordIds(p, cacheDir);
    if (ids.length >= n && ids.every(Boolean)) break;
    assert.ok(Date.now() - t0 < 10_000, "no batch record with an id");
    await new Promise((r) => setTimeout(r, 10));
  }
  b.child.kill("SIGINT");
  const r = await b.done;
  assert.equal(r.status, 130, r.stderr);
  return recordIds(p, cacheDir);
}

/** The batch made idle: the manifest edited so that no sample makes its requests, built direct. */
async function editAway(p: TempProject, env: Record<string, string>, text: string): Promise<void> {
  await p.write({ "dataset.yaml": text });
  const r = await runCli(["build", "--json"], p.dir, env, 30_000);
  assert.equal(r.status, 0, r.stderr);
}

/** An idle batch completed at the endpoint: made, the build interrupted, the manifest edited away from it and built direct. */
async function completedIdle(s: TestServer, p: TempProject, env: Record<string, string>): Promise<void> {
  await interruptAfterCreate(s, p, env);
  await editAway(p, env, manifest({ samples: 3, padding: 8 }));
  s.batches.setStepMs(20);
  await waitFor(() => s.batches.list()[0]!.status === "completed", 5000, "the batch to complete");
}

/** A build interrupted (Ctrl-C) while it reads an idle batch's files (the server holding the download). */
async function interruptWhileReading(p: TempProject, env: Record<string, string>): Promise<{ status: number | null; stderr: string }> {
  const b = spawnCli(["build", "--verbose"], p.dir, env, 20_000);
  let err = "";
  b.child.stderr.on("data", (d) => (err += d));
  await waitFor(() => /batch \S+ \(step 'outline'\): completed/.test(err), 10_000, "the idle batch's files to be read");
  await new Promise((r) => setTimeout(r, 200));
  b.child.kill("SIGINT");
  return b.done;
}

const withKeyEnv = (text: string, name: string) => text.replace("  retries: 2", `  retries: 2\n  api_key_env: ${name}`);

describe("idle batches", () => {
  const { project, server } = batchFixture();

  test("an up-to-date no-op needs no API key: an idle batch it cannot ask (its key unset) does not fail it", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, MY_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": withKeyEnv(manifest({ samples: 3, mode: "batch" }), "MY_KEY") });
    await interruptAfterCreate(s, p, env);
    await editAway(p, env, withKeyEnv(manifest({ samples: 3, padding: 8 }), "MY_KEY"));
    const dist = await p.snapshot();

    // No key in the environment: nothing needs one, every answer is cached and dist/ matches the lock.
    const { MY_KEY: _, ...noKey } = env;
    const noop = await runCli(["build", "--json", "--verbose"], p.dir, noKey);
    assert.equal(noop.status, 0, `a no-op build fails for want of a key it does not need:\n${noop.stderr}`);
    assert.equal(JSON.parse(noop.stdout).requests, 0);
    assert.deepEqual(await p.snapshot(), dist);
    assert.equal((await batchFiles(p)).length, 1, "the record stays");
  });

  test("a build that requests nothing (an output edit, every answer cached) needs no API key either", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, MY_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": withKeyEnv(manifest({ samples: 3, mode: "batch" }), "MY_KEY") });
    await interruptAfterCreate(s, p, env);
    const edited = withKeyEnv(manifest({ samples: 3, padding: 8 }), "MY_KEY");
    await editAway(p, env, edited);
    // Only the output changes: every answer is in the cache, no request is made.
    await p.write({ "dataset.yaml": edited.replace("format: prompt-completion", "format: openai-chat") });
    const { MY_KEY: _, ...noKey } = env;
    const r = await runCli(["build", "--json"], p.dir, noKey);
    assert.equal(r.status, 0, `a build that makes no request fails for want of a key:\n${r.stderr}`);
    assert.equal(JSON.parse(r.stdout).requests, 0);
  });

  test("Ctrl-C while an up-to-date build reads an idle batch's files: exit 130 (interrupted), not 0; dist/ and the lock as they were; the record stays", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    await completedIdle(s, p, env);
    const before = { dist: await p.snapshot(), lock: await p.read("dataset.lock") };
    const release = s.batches.holdDownload(1);
    try {
      const r = await interruptWhileReading(p, env);
      assert.deepEqual(await p.snapshot(), before.dist);
      assert.equal(await p.read("dataset.lock"), before.lock);
      assert.equal((await batchFiles(p)).length, 1, "the record stays");
      assert.equal(r.status, 130, `interrupted, the build says it succeeded (exit ${r.status}):\n${r.stderr}`);
    } finally {
      release();
    }
  });

  test("Ctrl-C while a build that requested reads an idle batch's files: exit 130, its release already written whole (the ask comes after it), the record stays", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    await completedIdle(s, p, env);
    const before = { dist: await p.snapshot(), lock: await p.read("dataset.lock") };
    // Another edit: this build requests, then collects the idle batch.
    await p.write({ "dataset.yaml": manifest({ samples: 3, padding: 16 }) });
    const release = s.batches.holdDownload(1);
    try {
      const r = await interruptWhileReading(p, env);
      assert.equal(r.status, 130, r.stderr);
      assert.match(r.stderr, /interrupted while asking batches [^\n]*: dist\/ and the lock are written, whole/);
      assert.notEqual(await p.read("dataset.lock"), before.lock, "the edited manifest's release");
      assert.notDeepEqual(await p.snapshot(), before.dist, "dist/ of the edited manifest");
      const v = await runCli(["verify"], p.dir, env);
      assert.equal(v.status, 0, v.stderr);
      assert.equal((await batchFiles(p)).length, 1, "the record stays");
    } finally {
      release();
    }
  });

  for (const fault of [
    { name: "refuses the key (401)", f: { call: "retrieve" as const, status: 401, forMs: 3_600_000 } },
    { name: "is down (connection reset)", f: { call: "retrieve" as const, reset: true, forMs: 3_600_000 } },
    { name: "answers 503", f: { call: "retrieve" as const, status: 503, forMs: 3_600_000 } },
  ]) {
    test(`an idle batch whose endpoint ${fault.name}: a no-op and a build that requests both succeed at once, the record stays, no stamp`, async () => {
      const s = await server(5000);
      const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
      const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
      await interruptAfterCreate(s, p, env);
      await editAway(p, env, manifest({ samples: 3, padding: 8 }));
      s.batches.failCalls(fault.f);
      const t0 = Date.now();
      const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
      assert.equal(noop.status, 0, noop.stderr);
      assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms`);
      assert.match(noop.stderr, /no stamp written: 1 batch/);
      await p.write({ "dataset.yaml": manifest({ samples: 3, padding: 16 }) });
      const t1 = Date.now();
      const b = await runCli(["build", "--json", "--verbose"], p.dir, env);
      assert.equal(b.status, 0, b.stderr);
      assert.ok(Date.now() - t1 < 5000, `took ${Date.now() - t1} ms`);
      assert.equal(JSON.parse(b.stdout).outputs[0].rows, 3);
      assert.equal((await batchFiles(p)).length, 1, "the record stays");
      assert.match(b.stderr, /no stamp written: 1 batch/);
    });
  }

  test("idle batches at an endpoint that accepts and never answers: a no-op waits one timeout, not one per batch", async () => {
    const s = await server(5000);
    const f = await front(s);
    try {
      const env = { TEST_BASE_URL: f.baseURL, OPENAI_API_KEY: "k", SYNTHBUILD_BATCH_MAX_LINES: "1", ...POLL };
      const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch", timeoutS: 2 }) });
      const ids = await interruptAfterCreate(s, p, env, 4);
      assert.equal(ids.length, 4);
      await editAway(p, env, manifest({ samples: 4, padding: 8, timeoutS: 2 }));
      f.state.hangRetrieve = true;
      const t0 = Date.now();
      const noop = await runCli(["build", "--json", "--verbose"], p.dir, env, 30_000);
      const took = Date.now() - t0;
      assert.equal(noop.status, 0, noop.stderr);
      assert.equal((await batchFiles(p)).length, 4, "the records stay");
      // A no-op (once instant) now waits model.timeout_s for each idle batch in turn.
      assert.ok(took < 5000, `an up-to-date build took ${took} ms: model.timeout_s (2 s) for each of the 4 idle batches, one after another`);
    } finally {
      await f.close();
    }
  });

  test("--frozen and --offline make no call of the Files or Batches API, an idle batch pending or not", async () => {
    const s = await server(5000);
    const f = await front(s);
    try {
      const env = { TEST_BASE_URL: f.baseURL, OPENAI_API_KEY: "k", ...POLL };
      const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
      await interruptAfterCreate(s, p, env);
      await editAway(p, env, manifest({ samples: 3, padding: 8 }));
      f.state.batchCalls.length = 0;
      // Up to date, --frozen: no call.
      const frozen = await runCli(["build", "--frozen", "--json"], p.dir, env);
      assert.equal(frozen.status, 0, frozen.stderr);
      assert.deepEqual(f.state.batchCalls, []);
      // dist/ gone: --frozen builds from the cache, still no call.
      await import("node:fs/promises").then((fs) => fs.rm(join(p.dir, "dist"), { recursive: true, force: true }));
      const frozen2 = await runCli(["build", "--frozen", "--json"], p.dir, env);
      assert.equal(frozen2.status, 0, frozen2.stderr);
      assert.deepEqual(f.state.batchCalls, []);
      // A plain no-op asks (the control).
      const noop = await runCli(["build", "--json"], p.dir, env);
      assert.equal(noop.status, 0, noop.stderr);
      assert.ok(f.state.batchCalls.length > 0, "a plain no-op asks the idle batch");
      f.state.batchCalls.length = 0;
      const offline = await runCli(["build", "--offline", "--json"], p.dir, env);
      assert.equal(offline.status, 0, offline.stderr);
      const offline2 = await runCli(["build", "--offline", "--json"], p.dir, env);
      assert.equal(offline2.status, 0, offline2.stderr);
      assert.deepEqual(f.state.batchCalls, []);
      assert.equal((await batchFiles(p)).length, 1, "the record stays");
    } finally {
      await f.close();
    }
  });

  test("an idle batch that expired: what it answered is stored, its record goes, the stamp is written; editing back requests only the rest", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch" }) });
    s.batches.expireBatches(1);
    const [id] = await interruptAfterCreate(s, p, env);
    await editAway(p, env, manifest({ samples: 4, padding: 8 }));
    const keys = (await p.cacheKeys()).length;
    s.batches.setStepMs(20);
    await waitFor(() => s.batches.list()[0]!.status === "expired", 5000, "the batch to expire");
    const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(noop.status, 0, noop.stderr);
    assert.deepEqual(await batchFiles(p), [], "an expired batch is settled: its record goes");
    assert.equal((await p.cacheKeys()).length, keys + 2, "the half it answered is stored");
    assert.doesNotMatch(noop.stderr, /no stamp written/);
    const stamped = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.match(stamped.stderr, /up to date: nothing the last complete build's stamp lists has changed/);
    await p.write({ "dataset.yaml": manifest({ samples: 4 }) });
    const before = chatRequests(s);
    const back = await runCli(["build", "--json"], p.dir, env);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(JSON.parse(back.stdout).requests, 2, "only the 2 the batch never ran");
    assert.equal(chatRequests(s) - before, 2);
    assert.ok(id);
  });

  test("an idle batch that failed validation: its record goes and the stamp is written, but the build does not say its answers were stored (it had none)", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    s.batches.refuseBatches("invalid_request", 1, "the input file is malformed");
    const [id] = await interruptAfterCreate(s, p, env);
    await editAway(p, env, manifest({ samples: 3, padding: 8 }));
    const keys = (await p.cacheKeys()).length;
    s.batches.setStepMs(20);
    await waitFor(() => s.batches.list()[0]!.status === "failed", 5000, "the batch to fail");
    const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(noop.status, 0, noop.stderr);
    assert.deepEqual(await batchFiles(p), [], "a failed batch is settled: its record goes");
    assert.equal((await p.cacheKeys()).length, keys, "nothing to store");
    assert.doesNotMatch(noop.stderr, /no stamp written/);
    assert.doesNotMatch(
      noop.stderr,
      new RegExp(`batch ${id} \\(step 'outline'\\) is done: its answers, which this manifest no longer asks for, are stored`),
      "a batch that failed with no answer is told as done with its answers stored",
    );
  });

  test("an idle batch cancelled with `status --cancel` (as the warning advises): collected once cancelled, its record goes, the stamp is written", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    await interruptAfterCreate(s, p, env);
    await p.write({ "dataset.yaml": manifest({ samples: 3, padding: 8 }) });
    const edited = await runCli(["build", "--json"], p.dir, env);
    assert.equal(edited.status, 0, edited.stderr);
    assert.match(edited.stderr, /`synthbuild status --cancel` cancels it, with every other batch of this cache still running/);
    const st = await runCli(["status", "--cancel", "--json"], p.dir, env);
    assert.equal(st.status, 0, st.stderr);
    assert.equal(s.batches.counts.cancelled, 1);
    s.batches.setStepMs(20);
    await waitFor(() => s.batches.list()[0]!.status === "cancelled", 5000, "the batch to be cancelled");
    const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(noop.status, 0, noop.stderr);
    assert.deepEqual(await batchFiles(p), [], "its record goes");
    assert.doesNotMatch(noop.stderr, /no stamp written/);
  });

  test("two projects sharing a cache: one waits for its batch while the other (whose manifest does not make its requests) asks and collects it; one batch, both succeed; the other is not told to cancel it", async () => {
    const s = await server(1500);
    const shared = await mkdtemp(join(tmpdir(), "synthbuild-shared-cache-"));
    try {
      const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", SYNTHBUILD_CACHE_DIR: shared, ...POLL };
      const pB = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
      const pA = await project({ "dataset.yaml": manifest({ samples: 3, padding: 8 }) });
      const [id] = await interruptAfterCreate(s, pB, env, 1, shared);
      // A's status says whose batch it is; B's does not (its own).
      const stA = await runCli(["status", "--json"], pA.dir, env);
      assert.equal(JSON.parse(stA.stdout).batches[0]?.manifest, join(pB.dir, "dataset.yaml"), stA.stderr);
      assert.match((await runCli(["status"], pA.dir, env)).stdout, new RegExp(`by the build of ${join(pB.dir, "dataset.yaml").replace(/[/.]/g, "\\$&")}`));
      assert.equal(JSON.parse((await runCli(["status", "--json"], pB.dir, env)).stdout).batches[0]?.manifest, undefined);
      // B again: it waits for its batch.
      const waiting = spawnCli(["build", "--json"], pB.dir, env, 30_000);
      // A meanwhile: its own requests direct, then B's batch asked as one its manifest no longer makes.
      const a = await runCli(["build", "--json", "--verbose"], pA.dir, env);
      assert.equal(a.status, 0, a.stderr);
      // A's no-ops race B to collect the batch.
      const noops: string[] = [];
      while ((await recordIds(pB, shared)).length) {
        const n = await runCli(["build", "--json", "--verbose"], pA.dir, env);
        assert.equal(n.status, 0, n.stderr);
        noops.push(n.stderr);
      }
      const b = await waiting.done;
      assert.equal(b.status, 0, b.stderr);
      assert.equal(JSON.parse(b.stdout).outputs[0].rows, 3);
      assert.equal(s.batches.counts.batchesCreated, 1, "no batch submitted twice");
      assert.equal(chatRequests(s), 3, "only A's requests went direct");
      const aAgain = await runCli(["build", "--json", "--verbose"], pA.dir, env);
      assert.equal(aAgain.status, 0, aAgain.stderr);
      // A's user is told B's batch is abandoned and how to cancel it: `status --cancel` in A
      // cancels it (the same step id at the same endpoint), while B is waiting for it.
      assert.doesNotMatch(
        a.stderr,
        new RegExp(`batch ${id} [^\\n]*though this manifest no longer makes its requests[^\\n]*status --cancel`),
        "another project's running batch, one a live build waits for, is told to this project's user as abandoned, with how to cancel it",
      );
    } finally {
      await rm(shared, { recursive: true, force: true });
    }
  });

  test("no file the build writes holds the API key, and an endpoint echoing the key in a batch's status does not get it printed (a key in a variable of any name)", async () => {
    const KEY = "review-secret-value-0123456789";
    const s = await server(5000);
    const f = await front(s);
    try {
      const env = { TEST_BASE_URL: f.baseURL, LLM_AUTH: KEY, ...POLL };
      const p = await project({ "dataset.yaml": withKeyEnv(manifest({ samples: 3, mode: "batch" }), "LLM_AUTH") });
      await interruptAfterCreate(s, p, env);
      await editAway(p, env, withKeyEnv(manifest({ samples: 3, padding: 8 }), "LLM_AUTH"));
      // Still running: the status the endpoint gives is said in the warning.
      f.state.rewriteRetrieve = (b) => ({ ...b, status: `in_progress (key ${KEY})` });
      const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
      assert.equal(noop.status, 0, noop.stderr);
      f.state.rewriteRetrieve = undefined;
      s.batches.setStepMs(20);
      await waitFor(() => s.batches.list()[0]!.status === "completed", 5000, "the batch to complete");
      const collected = await runCli(["build", "--json", "--verbose"], p.dir, env);
      assert.equal(collected.status, 0, collected.stderr);
      assert.deepEqual(await batchFiles(p), []);
      for (const [path, text] of Object.entries(await allFiles(p.dir))) assert.ok(!text.includes(KEY), `${path} holds the key`);
      assert.ok(!collected.stderr.includes(KEY) && !collected.stdout.includes(KEY));
      assert.ok(!noop.stderr.includes(KEY), `the key is printed:\n${noop.stderr}`);
    } finally {
      await f.close();
    }
  });

  test("the model edited (the other common edit): the idle batch is still asked, and no stamp is written while it runs", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const [id] = await interruptAfterCreate(s, p, env);
    await p.write({ "dataset.yaml": manifest({ samples: 3 }).replace("name: test-model", "name: test-model-2") });
    const edited = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(edited.status, 0, edited.stderr);
    assert.equal((await batchFiles(p)).length, 1, "the record stays");
    assert.notEqual(s.batches.list()[0]!.status, "completed", "the batch is still running");
    const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(noop.status, 0, noop.stderr);
    assert.doesNotMatch(
      noop.stderr,
      /up to date: nothing the last complete build's stamp lists has changed/,
      `a stamp was written while batch ${id} still runs: no later no-op asks it (README: every build, a no-op too, asks it)`,
    );
  });

  test("the step renamed and its model edited: a step at the batch's endpoint still asks it; with no step at its endpoint it cannot be asked, and the stamp is not withheld for it (its record stays, for status)", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const [id] = await interruptAfterCreate(s, p, env);
    const renamed = manifest({ samples: 3 })
      .replace("name: test-model", "name: other-model")
      .replace("id: outline", "id: summary")
      .replace("{{ outline }}", "{{ summary }}");
    await p.write({ "dataset.yaml": renamed });
    const edited = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(edited.status, 0, edited.stderr);
    assert.match(edited.stderr, new RegExp(`batch ${id} \\(step 'outline'[^\n]* is still (validating|in_progress)`));
    assert.match(edited.stderr, /no stamp written: 1 batch/);
    // Another endpoint altogether: nothing in the manifest can ask it.
    const other = await server();
    const moved = { ...env, TEST_BASE_URL: other.baseURL };
    const built = await runCli(["build", "--json", "--verbose"], p.dir, moved);
    assert.equal(built.status, 0, built.stderr);
    assert.doesNotMatch(built.stderr, new RegExp(`batch ${id}`));
    const stamped = await runCli(["build", "--json", "--verbose"], p.dir, moved);
    assert.match(stamped.stderr, /up to date: nothing the last complete build's stamp lists has changed/);
    assert.equal((await batchFiles(p)).length, 1, "the record stays, for status");
  });

  test("an idle batch unknown under the key in use (404): the build says so, as for a batch it waits for", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const [id] = await interruptAfterCreate(s, p, env);
    await editAway(p, env, manifest({ samples: 3, padding: 8 }));
    const other = { ...env, OPENAI_API_KEY: "another-key" };
    const noop = await runCli(["build", "--json", "--verbose"], p.dir, other);
    assert.equal(noop.status, 0, noop.stderr);
    assert.equal((await batchFiles(p)).length, 1, "the record stays");
    assert.match(noop.stderr, new RegExp(`batch ${id}[^\\n]*unknown`), `nothing said of batch ${id}, and the stamp is written:\n${noop.stderr}`);
  });

  test("an idle batch the endpoint refuses (401) on every build: the stamp is withheld on each, and the build says why it could not ask", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const [id] = await interruptAfterCreate(s, p, env);
    await editAway(p, env, manifest({ samples: 3, padding: 8 }));
    s.batches.failCalls({ call: "retrieve", status: 401, forMs: 3_600_000 });
    for (let i = 0; i < 2; i++) {
      const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
      assert.equal(noop.status, 0, noop.stderr);
      assert.match(noop.stderr, /no stamp written: 1 batch/);
      assert.match(noop.stderr, new RegExp(`batch ${id}[^\\n]*(401|refus|could not)`), `no word of why batch ${id} was not asked:\n${noop.stderr}`);
    }
  });
});
