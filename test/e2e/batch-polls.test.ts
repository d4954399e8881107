import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { batchFiles, batchFixture, chatRequests, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli, spawnCli, waitFor } from "../helpers/faults.js";

// A pending batch is paid for: polling it rides out an endpoint that is down far past
// model.retries (2 here), on its own budget (SYNTHBUILD_BATCH_OUTAGE_MS), and a batch the
// enqueued-token limit refused goes again later. The outages are the test server's own clock.
const FAST = { ...POLL, SYNTHBUILD_BATCH_MAX_POLL_MS: "100" };
const said = (stderr: string, re: RegExp) => stderr.split("\n").filter((l) => re.test(l)).length;

describe("batch mode: polls ride out an endpoint that is down; refusals stop the build once", () => {
  const { project, server } = batchFixture();

  test("polls failing for a while (503, then dropped connections) are ridden out past model.retries; the endpoint is said to be down once", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...FAST, SYNTHBUILD_BATCH_OUTAGE_WARN_MS: "150" };
    s.batches.failCalls({ call: "retrieve", status: 503, forMs: 300 });
    s.batches.failCalls({ call: "retrieve", reset: true, forMs: 600 });
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 3);
    assert.equal(s.batches.counts.batchesCreated, 1);
    assert.equal(said(r.stderr, /the Batch API at .* has not answered for .* keeps running there/), 1, r.stderr);
    assert.deepEqual(await batchFiles(p), []);
  });

  test("an endpoint that refuses connections while a batch runs: the build waits for it to come back", async () => {
    const s = await server(150);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...FAST };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const b = spawnCli(["build", "--json"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    await s.refuseConnections(500);
    const r = await b.done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 3);
    assert.equal(s.batches.counts.batchesCreated, 1);
  });

  test("an outage longer than a build rides out stops it once, the batch left running; the next build collects it", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...FAST };
    s.batches.failCalls({ call: "retrieve", status: 503, forMs: 60_000 });
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, { ...env, SYNTHBUILD_BATCH_OUTAGE_MS: "300" });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(said(r.stderr, /the Batch API at .* has not answered for .*HTTP 503.*left running there/), 1, r.stderr);
    assert.match(r.stderr, /the build stopped/);
    assert.match(r.stderr, /synthbuild status/);
    assert.equal((await batchFiles(p)).length, 1, "the record is kept");
    assert.equal(await p.exists("dataset.lock"), false);

    s.batches.clearFaults();
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "collected, not submitted again");
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 3);
    assert.equal(chatRequests(s), 0);
  });

  test("a poll refused for the whole endpoint stops the build once: a rejected key (401); no Batches API (404 from the list too)", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...FAST };
    s.batches.failCalls({ call: "retrieve", status: 401, times: 100 });
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build"], p.dir, env);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(said(r.stderr, /the endpoint rejected the API key/), 1, r.stderr);
    assert.match(r.stderr, /the build stopped/);
    assert.equal((await batchFiles(p)).length, 1, "the batch is left to a build with the right key");

    s.batches.clearFaults();
    s.batches.failCalls({ call: "retrieve", status: 404, times: 100 });
    s.batches.failCalls({ call: "list", status: 404, times: 100 });
    const q = await project({ "dataset.yaml": manifest({ samples: 2, mode: "batch" }) });
    const gone = await runCli(["build"], q.dir, env);
    assert.equal(gone.status, 1, gone.stderr);
    assert.equal(said(gone.stderr, /there is no Batch API \(Files and Batches\) at /), 1, gone.stderr);
    assert.equal(s.batches.counts.batchesCreated, 2, "not submitted again for a 404 of the whole API");
    assert.equal((await batchFiles(q)).length, 1);
  });

  test("Ctrl-C while the endpoint is down leaves the batch running (exit 130)", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...FAST };
    s.batches.failCalls({ call: "retrieve", status: 503, forMs: 60_000 });
    const p = await project({ "dataset.yaml": manifest({ samples: 2, mode: "batch" }) });
    const b = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    await new Promise((r) => setTimeout(r, 300));
    b.child.kill("SIGINT");
    const r = await b.done;
    assert.equal(r.status, 130, r.stderr);
    assert.match(r.stderr, /1 batch is still running at the endpoint \(batch_test_\d+\)/);
    assert.equal(s.batches.counts.cancelled, 0);
    assert.equal((await batchFiles(p)).length, 1);
  });
});

describe("batch mode: a batch refused for the organisation's enqueued-token limit", () => {
  const { project, server } = batchFixture();

  test("is submitted again after a wait, saying why; none of its requests fails", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...FAST, SYNTHBUILD_BATCH_REQUEUE_MS: "20" };
    s.batches.refuseBatches("token_limit_exceeded", 2);
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.failed, 0);
    assert.equal(json.outputs[0].rows, 3);
    assert.deepEqual(
      s.batches.list().map((b) => [b.status, b.customIds.length]),
      [
        ["failed", 3],
        ["failed", 3],
        ["completed", 3],
      ],
    );
    assert.equal(said(r.stderr, /token_limit_exceeded.*enqueued-token limit for test-model is full.*go again in a new batch in/), 2, r.stderr);
    assert.deepEqual(await batchFiles(p), []);
  });

  test("that stays full fails its requests after a bounded number of resubmissions; another failure code fails them at once", async () => {
    const s = await server(10);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...FAST, SYNTHBUILD_BATCH_REQUEUE_MS: "5" };
    s.batches.refuseBatches("token_limit_exceeded");
    const p = await project({ "dataset.yaml": manifest({ samples: 2, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 1, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.failed, 2);
    assert.match(json.failures[0].reason, /token_limit_exceeded.*submitted 9 times .*stayed full/);
    assert.equal(s.batches.counts.batchesCreated, 9, "the first and 8 more");

    s.batches.reset();
    s.batches.refuseBatches("invalid_request", Infinity, "every line of a batch must name the same model");
    const q = await project({ "dataset.yaml": manifest({ samples: 2, mode: "batch" }) });
    const other = await runCli(["build", "--json"], q.dir, env);
    assert.equal(other.status, 1, other.stderr);
    assert.equal(JSON.parse(other.stdout).failed, 2);
    assert.equal(s.batches.counts.batchesCreated, 1, "not submitted again");
    assert.doesNotMatch(other.stderr, /enqueued-token/);
  });
});
