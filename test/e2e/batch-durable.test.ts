import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { batchFiles, batchFixture, chatRequests, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli, spawnCli, waitFor } from "../helpers/faults.js";

describe("batch mode: batches outlive the build that submitted them", () => {
  const { project, server } = batchFixture();

  test("kill -9 while polling: the rebuild finds the batch in cache/state and never submits it twice; status shows it meanwhile", async () => {
    // Slow batches while the build is killed and status asked; fast ones for the rebuild.
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 5, mode: "batch" }) });
    const first = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    // Its record is written once the create is answered: wait for it before the kill.
    const t0 = Date.now();
    while ((await batchFiles(p)).length === 0 || !JSON.parse(await readFile(join(p.dir, "cache/state/batches", (await batchFiles(p))[0]!), "utf8")).batch_id) {
      assert.ok(Date.now() - t0 < 5000, "no batch record");
      await new Promise((r) => setTimeout(r, 10));
    }
    first.child.kill("SIGKILL");
    assert.equal((await first.done).signal, "SIGKILL");

    const st = await runCli(["status", "--json"], p.dir, env);
    assert.equal(st.status, 0, st.stderr);
    const pending = JSON.parse(st.stdout).batches;
    assert.equal(pending.length, 1);
    assert.equal(pending[0].id, s.batches.list()[0]!.id);
    assert.equal(pending[0].step, "outline");
    assert.equal(pending[0].requests, 5);
    assert.match(pending[0].status, /^(validating|in_progress|finalizing)$/);
    const human = await runCli(["status"], p.dir, env);
    assert.match(human.stdout, /1 batch pending:[\s\S]*step 'outline'[\s\S]*synthbuild status --cancel/);

    s.batches.setStepMs(20);
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "the pending batch was resumed, not submitted again");
    assert.equal(s.batches.counts.filesUploaded, 1);
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 5);
    assert.deepEqual(await batchFiles(p), []);
    assert.deepEqual(JSON.parse((await runCli(["status", "--json"], p.dir, env)).stdout).batches, []);
  });

  test("Ctrl-C while polling leaves the batch running and says how to cancel it; status --cancel cancels it; the next build asks again for what it never ran", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch" }) });
    const b = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    await new Promise((r) => setTimeout(r, 100));
    b.child.kill("SIGINT");
    const r = await b.done;
    assert.equal(r.status, 130, r.stderr);
    assert.match(r.stderr, /1 batch is still running at the endpoint \(batch_test_\d+\)/);
    assert.match(r.stderr, /synthbuild status --cancel/);
    assert.equal(s.batches.counts.cancelled, 0, "Ctrl-C cancels nothing");
    assert.equal(await p.exists("dataset.lock"), false);

    const c = await runCli(["status", "--cancel", "--json"], p.dir, env);
    assert.equal(c.status, 0, c.stderr);
    assert.equal(JSON.parse(c.stdout).batches[0].cancelled, true);
    assert.equal(s.batches.counts.cancelled, 1);
    s.batches.setStepMs(20);
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(s.batches.counts.batchesCreated, 2, "the cancelled batch's requests, in a batch of their own");
    assert.equal(s.batches.list()[1]!.customIds.length, 4);
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 4);
  });
  test("a pending batch the endpoint no longer knows is let go, and its requests asked for again", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const first = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    const t0 = Date.now();
    while ((await batchFiles(p)).length === 0 || !JSON.parse(await readFile(join(p.dir, "cache/state/batches", (await batchFiles(p))[0]!), "utf8")).batch_id) {
      assert.ok(Date.now() - t0 < 5000, "no batch record");
      await new Promise((r) => setTimeout(r, 10));
    }
    first.child.kill("SIGKILL");
    await first.done;
    s.batches.reset();
    s.batches.setStepMs(20);
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "submitted again, once");
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 3);
    assert.deepEqual(await batchFiles(p), []);
  });

  test("a pending batch's keys are collected from it after the manifest switches to mode: direct; only the keys it does not cover go direct", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch" }) });
    const b = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    await new Promise((r) => setTimeout(r, 100));
    b.child.kill("SIGINT");
    assert.equal((await b.done).status, 130);
    assert.equal((await batchFiles(p)).length, 1);
    s.batches.setStepMs(20);
    // Two more samples, and no batching at all.
    await p.write({ "dataset.yaml": manifest({ samples: 6 }) });
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(chatRequests(s), 2, "only the 2 keys the pending batch does not cover are asked directly");
    assert.equal(s.batches.counts.batchesCreated, 1, "no new batch");
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 6);
    assert.deepEqual(await batchFiles(p), [], "the batch was collected and its record forgotten");
  });

  test("status --forget drops the records of pending batches; the next build asks again for their requests", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 2, mode: "batch" }) });
    const b = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    await new Promise((r) => setTimeout(r, 100));
    b.child.kill("SIGINT");
    await b.done;
    const f = await runCli(["status", "--forget", "--json"], p.dir, env);
    assert.equal(f.status, 0, f.stderr);
    assert.equal(JSON.parse(f.stdout).batches[0].forgotten, true);
    assert.deepEqual(await batchFiles(p), []);
    assert.equal(s.batches.counts.cancelled, 0);
    s.batches.setStepMs(20);
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(s.batches.counts.batchesCreated, 2);
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 2);
  });
});
