import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { batchFiles, batchFixture, chatRequests, lockSamples, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli } from "../helpers/faults.js";

describe("batch mode (the OpenAI Batch API)", () => {
  const { project, server } = batchFixture();

  test("two steps by batch: no direct request, the second step's batch built from the first's answers, the same dist/ as a direct build", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const direct = await project({ "dataset.yaml": manifest({ samples: 6, twoSteps: true }) });
    const d = await runCli(["build", "--json"], direct.dir, env);
    assert.equal(d.status, 0, d.stderr);
    assert.equal(chatRequests(s), 12);
    s.reset();

    const batched = await project({ "dataset.yaml": manifest({ samples: 6, twoSteps: true, mode: "batch" }) });
    const b = await runCli(["build", "--json"], batched.dir, env);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(chatRequests(s), 0, "no direct /v1/chat/completions request");
    assert.equal(s.batches.counts.batchesCreated, 2, "one batch per step");
    const [first, second] = s.batches.list();
    assert.equal(first!.customIds.length, 6);
    assert.equal(second!.customIds.length, 6);
    // The rows byte for byte; the dataset card differs, as it names the lock's hash, and the lock says which batch answered.
    assert.equal(await batched.read("dist/out.jsonl"), await direct.read("dist/out.jsonl"));
    assert.deepEqual(await batchFiles(batched), [], "finished batches leave no state");
    // The same cache keys as direct requests: a direct build on the batch build's cache asks nothing.
    assert.deepEqual(await batched.cacheKeys(), await direct.cacheKeys());
    await batched.write({ "dataset.yaml": manifest({ samples: 6, twoSteps: true }) });
    const again = await runCli(["build", "--json"], batched.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).requests, 0);
    assert.equal(chatRequests(s), 0);
    assert.equal(s.batches.counts.batchesCreated, 2);
  });

  test("the lock marks batch answers; --frozen after a batch build makes no request; --offline answers locally with no batch", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const b = await runCli(["build"], p.dir, env);
    assert.equal(b.status, 0, b.stderr);
    const [only] = s.batches.list();
    const samples = lockSamples(await p.read("dataset.lock"));
    assert.equal(samples.length, 3);
    for (const x of samples) assert.equal(x.steps.outline.batch, only!.id, "each answer names the batch that gave it");

    await rm(join(p.dir, "dist"), { recursive: true });
    const frozen = await runCli(["build", "--frozen"], p.dir, env);
    assert.equal(frozen.status, 0, frozen.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "--frozen submits nothing");
    assert.equal(s.batches.counts.filesUploaded, 1);
    assert.equal(chatRequests(s), 0);
    assert.ok(await p.exists("dist/out.jsonl"));

    const offline = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const o = await runCli(["build", "--offline", "--json"], offline.dir, { ...env, OPENAI_API_KEY: undefined });
    assert.equal(o.status, 0, o.stderr);
    assert.equal(JSON.parse(o.stdout).requests, 3);
    assert.equal(s.batches.counts.batchesCreated, 1, "offline answers are made locally: no batch");
    assert.ok(lockSamples(await offline.read("dataset.lock")).every((x) => x.steps.outline.batch === undefined));
  });

  test("failed lines are resubmitted alone; a line that keeps failing fails its sample after model.retries", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    s.batches.failLines({ match: "Outline v02", times: 1 });
    s.batches.failLines({ match: "Outline v04" });
    const p = await project({ "dataset.yaml": manifest({ samples: 6, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 1, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.failed, 1);
    assert.equal(json.failures[0].step, "outline");
    assert.match(json.failures[0].reason, /HTTP 500: Injected batch line fault/);
    const list = s.batches.list();
    // 6 lines; then v02 and v04 alone; then v04 alone again (retries: 2).
    assert.deepEqual(
      list.map((b) => b.customIds.length),
      [6, 2, 1],
    );
    assert.equal(chatRequests(s), 0);
    assert.equal(json.outputs[0].rows, 5);
  });

  test("an expired batch's unfinished lines are resubmitted; files split at the line and byte limits", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL, SYNTHBUILD_BATCH_MAX_LINES: "4" };
    s.batches.expireBatches(1);
    const p = await project({ "dataset.yaml": manifest({ samples: 10, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    const sizes = s.batches.list().map((b) => b.customIds.length);
    // 4 + 4 + 2; the first expired with half its lines run: the other 2 go again.
    assert.deepEqual(sizes, [4, 4, 2, 2]);
    assert.equal(s.batches.list()[0]!.status, "expired");
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 10);
    const direct = await project({ "dataset.yaml": manifest({ samples: 10 }) });
    assert.equal((await runCli(["build"], direct.dir, env)).status, 0);
    assert.equal(await p.read("dist/out.jsonl"), await direct.read("dist/out.jsonl"));

    // The byte limit too: below one line's size, each line is a file of its own.
    const before = s.batches.counts.batchesCreated;
    const bytes = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const b = await runCli(["build"], bytes.dir, { ...env, SYNTHBUILD_BATCH_MAX_BYTES: "1" });
    assert.equal(b.status, 0, b.stderr);
    assert.equal(s.batches.counts.batchesCreated - before, 3);
  });

  test("mode: auto batches a step only above batch_above; plan prices batch requests at half, and the build spends half", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const small = await project({ "dataset.yaml": manifest({ samples: 4, mode: "auto", batchAbove: 5, price: true }) });
    const big = await project({ "dataset.yaml": manifest({ samples: 8, mode: "auto", batchAbove: 5, price: true }) });
    const bigDirect = await project({ "dataset.yaml": manifest({ samples: 8, price: true }) });
    const plans = await Promise.all([small, big, bigDirect].map(async (p) => JSON.parse((await runCli(["plan", "--json"], p.dir, env)).stdout)));
    assert.equal(plans[0].steps[0].batch, undefined);
    assert.equal(plans[1].steps[0].batch, true);
    assert.equal(plans[2].steps[0].batch, undefined);
    assert.ok(plans[2].estimate.cost_usd > 0);
    assert.ok(Math.abs(plans[1].estimate.cost_usd - plans[2].estimate.cost_usd / 2) < 1e-9, "batch requests priced at half the list price");

    const a = await runCli(["build", "--json"], small.dir, env);
    assert.equal(a.status, 0, a.stderr);
    assert.equal(chatRequests(s), 4, "4 requests, not above 5: direct");
    assert.equal(s.batches.counts.batchesCreated, 0);
    const b = await runCli(["build", "--json"], big.dir, env);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(chatRequests(s), 4, "8 requests, above 5: by batch");
    assert.equal(s.batches.counts.batchesCreated, 1);
    const d = await runCli(["build", "--json"], bigDirect.dir, env);
    assert.equal(d.status, 0, d.stderr);
    const spent = JSON.parse(b.stdout).cost_usd;
    assert.ok(spent > 0);
    assert.ok(Math.abs(spent - JSON.parse(d.stdout).cost_usd / 2) < 1e-6, `a batch build spends half: ${spent} vs ${JSON.parse(d.stdout).cost_usd}`);
  });

  test("mode: auto with --limit: plan and build count the same requests (only what --limit admits) and agree on direct", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 30, mode: "auto", batchAbove: 10 }) });
    const plan = JSON.parse((await runCli(["plan", "--limit", "3", "--json"], p.dir, env)).stdout);
    assert.equal(plan.steps[0].batch, undefined, "3 requests, not above 10: direct");
    const b = await runCli(["build", "--limit", "3", "--json"], p.dir, env);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(s.batches.counts.batchesCreated, 0, "no batch for 3 requests");
    assert.equal(chatRequests(s), 3);
  });

  test("progress of a batch build counts samples sending one request as one request", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    // 8 samples, 4 distinct requests: the prompt names only item.
    const text = manifest({ samples: 4, mode: "batch" })
      .replace("dimensions:\n", "dimensions:\n  lang: [en, fr]\n")
      .replace('prompt: "{{ item }}"', 'prompt: "{{ item }} {{ lang }}"');
    const p = await project({ "dataset.yaml": text });
    const r = await runCli(["build"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(s.batches.list()[0]!.customIds.length, 4);
    assert.match(r.stderr, /^4 requests to make$/m);
  });
});
