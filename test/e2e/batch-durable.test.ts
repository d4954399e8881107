import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { batchFiles, batchFixture, chatRequests, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli, spawnCli, waitFor } from "../helpers/faults.js";
import type { TempProject } from "../helpers/project.js";
import type { TestServer } from "../server/openai-test-server.js";

/** A build killed (-9) once its batch is created and recorded: the batch's id. */
async function killWhilePolling(s: TestServer, p: TempProject, env: Record<string, string>): Promise<string> {
  const first = spawnCli(["build"], p.dir, env);
  await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
  const t0 = Date.now();
  for (;;) {
    const [name] = await batchFiles(p);
    const id = name && JSON.parse(await readFile(join(p.dir, "cache/state/batches", name), "utf8")).batch_id;
    if (id) {
      first.child.kill("SIGKILL");
      await first.done;
      return id;
    }
    assert.ok(Date.now() - t0 < 5000, "no batch record");
    await new Promise((r) => setTimeout(r, 10));
  }
}

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
  test("a pending batch unknown under another API key is never resubmitted: its samples fail naming the batch, the endpoint and `status --forget`; the key that made it collects it", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "key-a", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const id = await killWhilePolling(s, p, env);
    // The batch still runs under key-a's account, where it is paid for.
    s.batches.setStepMs(20);
    const other = await runCli(["build", "--json"], p.dir, { ...env, OPENAI_API_KEY: "key-b" });
    assert.equal(other.status, 1, other.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "not submitted again under the other key");
    assert.equal(s.batches.counts.filesUploaded, 1);
    assert.equal(chatRequests(s), 0, "nor asked directly");
    assert.equal(JSON.parse(other.stdout).failed, 3);
    assert.ok(other.stderr.includes(`batch ${id}`), other.stderr);
    assert.ok(other.stderr.includes(s.baseURL), other.stderr);
    assert.ok(other.stderr.includes(`synthbuild status --forget ${id}`), other.stderr);
    assert.doesNotMatch(other.stderr, /key-[ab]/);
    assert.equal((await batchFiles(p)).length, 1, "its record is kept");

    const back = await runCli(["build", "--json"], p.dir, env);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "collected under the key that made it");
    assert.equal(JSON.parse(back.stdout).outputs[0].rows, 3);
    assert.deepEqual(await batchFiles(p), []);
  });

  test("a pending batch the endpoint no longer knows stops its samples until `status --forget <id>` lets it go; then its requests are submitted again, once", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const id = await killWhilePolling(s, p, env);
    s.batches.reset();
    s.batches.setStepMs(20);
    const stopped = await runCli(["build", "--json"], p.dir, env);
    assert.equal(stopped.status, 1, stopped.stderr);
    assert.equal(s.batches.counts.batchesCreated, 0, "nothing resubmitted without being asked");
    assert.ok(stopped.stderr.includes(`synthbuild status --forget ${id}`), stopped.stderr);
    assert.equal((await batchFiles(p)).length, 1);

    const bogus = await runCli(["status", "--forget", "batch_nope"], p.dir, env);
    assert.equal(bogus.status, 2, bogus.stderr);
    assert.match(bogus.stderr, /batch_nope/);
    assert.equal((await batchFiles(p)).length, 1, "an unknown id forgets nothing");
    const f = await runCli(["status", "--forget", id, "--json"], p.dir, env);
    assert.equal(f.status, 0, f.stderr);
    assert.deepEqual(
      JSON.parse(f.stdout).batches.map((b: { id: string; forgotten?: boolean }) => [b.id, b.forgotten]),
      [[id, true]],
    );
    assert.deepEqual(await batchFiles(p), []);
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

  test("a collected batch's answers the edited manifest no longer wants are stored all the same (if sound): editing it back costs nothing", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 5, mode: "batch", schema: true }) });
    const b = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    await new Promise((r) => setTimeout(r, 100));
    b.child.kill("SIGINT");
    assert.equal((await b.done).status, 130);
    s.batches.setStepMs(20);
    // An answer that fails its schema is kept no more than a direct one would be.
    s.batches.failLines({ match: "Outline v04", kind: "not_json", times: 1 });
    await p.write({ "dataset.yaml": manifest({ samples: 2, mode: "batch", schema: true }) });
    const fewer = await runCli(["build", "--json"], p.dir, env);
    assert.equal(fewer.status, 0, fewer.stderr);
    assert.equal(JSON.parse(fewer.stdout).outputs[0].rows, 2);
    assert.equal((await p.cacheKeys()).length, 4, "the 2 sound answers no sample wants now are in the cache too");
    assert.deepEqual(await batchFiles(p), []);

    await p.write({ "dataset.yaml": manifest({ samples: 5, mode: "batch", schema: true }) });
    const back = await runCli(["build", "--json"], p.dir, env);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(JSON.parse(back.stdout).requests, 1);
    assert.equal(JSON.parse(back.stdout).outputs[0].rows, 5);
    assert.deepEqual(
      s.batches.list().map((x) => x.customIds.length),
      [5, 1],
      "only the answer that failed its schema is asked again",
    );
    assert.equal(chatRequests(s), 0);
    const direct = await project({ "dataset.yaml": manifest({ samples: 5, schema: true }) });
    assert.equal((await runCli(["build"], direct.dir, env)).status, 0);
    assert.equal(await p.read("dist/out.jsonl"), await direct.read("dist/out.jsonl"), "each stored under its own request's key");
  });

  test("a batch none of whose requests the edited manifest makes is asked once by each build, never waited for; once done its answers are stored and its record goes; editing back costs nothing", async () => {
    const s = await server(5000);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const b = spawnCli(["build"], p.dir, env);
    await waitFor(() => s.batches.counts.batchesCreated === 1, 10_000, "the batch to be created");
    await new Promise((r) => setTimeout(r, 100));
    b.child.kill("SIGINT");
    assert.equal((await b.done).status, 130);
    const [id] = s.batches.list().map((x) => x.id);

    // Every prompt changed, and no batching: the batch's requests are made by no sample now.
    await p.write({ "dataset.yaml": manifest({ samples: 3, padding: 8 }) });
    const edited = await runCli(["build", "--json"], p.dir, env);
    assert.equal(edited.status, 0, edited.stderr);
    assert.equal(chatRequests(s), 3, "the edited manifest's requests go direct");
    assert.match(
      edited.stderr,
      new RegExp(`batch ${id} \\(step 'outline', 3 request\\(s\\)[^\\n]* is still (validating|in_progress), though this manifest no longer makes its requests`),
    );
    assert.equal((await batchFiles(p)).length, 1, "a batch still running keeps its record");
    // No stamp while it runs: a no-op build asks it again.
    const noop = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(noop.status, 0, noop.stderr);
    assert.equal(JSON.parse(noop.stdout).requests, 0);
    assert.match(noop.stderr, /no stamp written: 1 batch this manifest no longer asks anything of is still to be collected/);
    assert.match(noop.stderr, /is still (validating|in_progress)/);

    s.batches.setStepMs(20);
    await waitFor(() => s.batches.list()[0]!.status === "completed", 5000, "the batch to complete");
    const collected = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(collected.status, 0, collected.stderr);
    assert.equal(JSON.parse(collected.stdout).requests, 0);
    assert.match(
      collected.stderr,
      new RegExp(`batch ${id} \\(step 'outline', 3 request\\(s\\)[^)]*\\) is completed: what it answered, which this manifest no longer asks for, is stored`),
    );
    assert.deepEqual(await batchFiles(p), [], "its record goes once its answers are stored");
    assert.equal((await p.cacheKeys()).length, 6, "the batch's 3 answers beside the direct 3");
    const stamped = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.match(stamped.stderr, /up to date: nothing the last complete build's stamp lists has changed/, "with nothing left to collect, the stamp is written");

    await p.write({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const back = await runCli(["build", "--json"], p.dir, env);
    assert.equal(back.status, 0, back.stderr);
    assert.equal(JSON.parse(back.stdout).requests, 0);
    assert.equal(JSON.parse(back.stdout).outputs[0].rows, 3);
    assert.equal(s.batches.counts.batchesCreated, 1, "no batch submitted again");
    assert.equal(chatRequests(s), 3);
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
