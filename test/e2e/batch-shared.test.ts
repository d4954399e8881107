import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import { batchFixture, chatRequests, lockSamples, manifest, POLL } from "../helpers/batch.js";
import { spawnCli } from "../helpers/faults.js";

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
  });
});
