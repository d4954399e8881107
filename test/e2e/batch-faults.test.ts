import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { batchFiles, batchFixture, chatRequests, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli } from "../helpers/faults.js";

describe("batch mode: faults of the Batches API calls", () => {
  const { project, server } = batchFixture();

  test("a create whose answer is lost (made, then 502) is found by its input file, never made twice", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    s.batches.failCalls({ call: "create", afterCreate: true, status: 502 });
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "one batch over the input file");
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 4);
    assert.equal(chatRequests(s), 0);
    assert.deepEqual(await batchFiles(p), []);
  });

  test("a retry-after on a poll is heeded only up to the longest poll wait (retry-after: 86400 never sleeps a day)", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL, SYNTHBUILD_BATCH_MAX_POLL_MS: "200" };
    s.batches.failCalls({ call: "retrieve", status: 429, retryAfter: 86400 });
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const t0 = Date.now();
    const r = await runCli(["build", "--json"], p.dir, env, 10_000);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(Date.now() - t0 < 8000);
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 3);
    assert.equal(s.batches.counts.batchesCreated, 1);
  });

  test("a batch still pending past the give-up time: the build stops waiting, fails nothing, keeps the record; the next build collects it", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, { ...env, SYNTHBUILD_BATCH_GIVE_UP_MS: "300" });
    assert.match(r.stderr, /batch batch_test_\d+ \(step 'outline'\) is still \w+ after .*the next build resumes the batch/);
    const json = JSON.parse(r.stdout);
    assert.equal(json.failed, 0, "no sample failed for it");
    assert.equal((await batchFiles(p)).length, 1, "the record is kept");
    s.batches.setStepMs(20);
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "resumed, not submitted again");
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 3);
    assert.equal(chatRequests(s), 0);
    assert.deepEqual(await batchFiles(p), []);
  });

  test("a create that fails gives back what its requests reserved of --max-cost: the next wave's batch still fits the budget", async () => {
    const s = await server(20);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    s.batches.failCalls({ call: "create", status: 400 });
    // Each request may cost ~0.0165 at the batch price: the budget holds 2, not 4.
    const text = manifest({ samples: 6, mode: "batch", price: true }).replace("steps:\n", "target: { rows: 2, max_candidates: 6 }\nsteps:\n");
    const p = await project({ "dataset.yaml": text });
    const r = await runCli(["build", "--json", "--max-cost", "0.045"], p.dir, env);
    const json = JSON.parse(r.stdout);
    assert.equal(json.failed, 2, "the first wave's create failed");
    assert.deepEqual(
      s.batches.list().map((b) => b.customIds.length),
      [2],
      "the second wave's 2 requests were let start",
    );
    assert.equal(json.outputs[0].rows, 2);
  });

  test("a malformed line of an output file is its own request's error: that request goes again, the others are taken", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    s.batches.failCalls({ call: "content", corrupt: true });
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      s.batches.list().map((b) => b.customIds.length),
      [3, 1],
    );
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 3);
    assert.deepEqual(await batchFiles(p), []);
  });

  test("an output file the endpoint no longer has: the batch is let go and its requests submitted again, never blocking the step", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    s.batches.failCalls({ call: "content", status: 404 });
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      s.batches.list().map((b) => b.customIds.length),
      [3, 3],
    );
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 3);
    assert.deepEqual(await batchFiles(p), []);
  });
});
