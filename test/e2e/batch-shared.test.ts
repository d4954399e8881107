import assert from "node:assert/strict";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, describe, test } from "node:test";
import { claimPath } from "../../src/cache/batch-claim.js";
import { initHashing } from "../../src/util/hash.js";
import { batchFixture, chatRequests, lockSamples, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli, spawnCli } from "../helpers/faults.js";

describe("batch mode: builds sharing one cache folder", () => {
  const { project, server } = batchFixture();
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test("two builds started at once on one cache (two checkouts) submit each step's batch once; both succeed with the same dist/", async () => {
    const s = await server(100);
    const cache = await mkdtemp(join(tmpdir(), "synthbuild-shared-cache-"));
    dirs.push(cache);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", SYNTHBUILD_CACHE_DIR: cache, ...POLL };
    const text = manifest({ samples: 6, twoSteps: true, mode: "batch" });
    const a = await project({ "dataset.yaml": text });
    const b = await project({ "dataset.yaml": text });
    const [ra, rb] = await Promise.all([spawnCli(["build", "--json"], a.dir, env).done, spawnCli(["build", "--json"], b.dir, env).done]);
    assert.equal(ra.status, 0, ra.stderr);
    assert.equal(rb.status, 0, rb.stderr);
    assert.equal(s.batches.counts.batchesCreated, 2, "one batch per step, not one per build");
    assert.equal(s.batches.counts.filesUploaded, 2);
    assert.equal(chatRequests(s), 0);
    assert.equal(JSON.parse(ra.stdout).outputs[0].rows, 6);
    assert.equal(await a.read("dist/out.jsonl"), await b.read("dist/out.jsonl"));
    assert.deepEqual(lockSamples(await a.read("dataset.lock")), lockSamples(await b.read("dataset.lock")));
    assert.deepEqual(await readdir(join(cache, "state", "claims")), [], "claims are let go");
  });

  test("a claim left by a build killed while submitting (its PID gone) is taken over: the next build does not wait for it", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const first = await runCli(["build", "--json"], p.dir, env);
    assert.equal(first.status, 0, first.stderr);
    await p.write({ "dataset.yaml": manifest({ samples: 5, mode: "batch" }) });
    // The claim of this endpoint and model, as a build killed mid-submission leaves it.
    await initHashing();
    const claim = claimPath(join(p.dir, "cache"), s.baseURL, "test-model");
    await mkdir(dirname(claim), { recursive: true });
    await writeFile(claim, JSON.stringify({ host: hostname(), pid: 2 ** 22 + 11, token: "killed" }));
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.doesNotMatch(again.stderr, /another build sharing this cache/);
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 5);
    assert.deepEqual(
      s.batches.list().map((b) => b.customIds.length),
      [3, 2],
    );
    assert.deepEqual(await readdir(dirname(claim)), [], "taken over (it was this endpoint's), then let go");
  });
});
