import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { batchFiles, batchFixture, chatRequests, manifest, POLL } from "../helpers/batch.js";
import { allFiles, runCliBounded as runCli, spawnCli, waitFor } from "../helpers/faults.js";

// The Files API's transfers: bound by their progress, not by model.timeout_s (0.3 s here); an
// output file read as it arrives; and ids that would carry the key never written down.
describe("batch mode: input and output files", () => {
  const { project, server } = batchFixture();

  test("an upload that takes longer than model.timeout_s goes through: its time grows with its size", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    // About 256 KB, answered as if it came at 512 KB/s: half a second, against a 0.3 s timeout.
    s.batches.transfers({ uploadBytesPerSec: 512 * 1024 });
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch", timeoutS: 0.3, padding: 64_000 }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 4);
    assert.equal(s.batches.counts.filesUploaded, 1, "uploaded once, not timed out and sent again");
    assert.equal(chatRequests(s), 0);
  });

  test("a download that takes longer than model.timeout_s goes through; one that stalls is given up after model.timeout_s and read again", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    // The output file (about 3 KB) in pieces every 50 ms: most of a second.
    s.batches.transfers({ downloadBytesPerSec: 4000 });
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch", timeoutS: 0.3 }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 4);

    s.batches.transfers({ stallDownload: true });
    const q = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch", timeoutS: 0.3 }) });
    const t0 = Date.now();
    const again = await runCli(["build", "--json"], q.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 4);
    assert.equal(s.batches.counts.batchesCreated, 2, "the file read again, the batch not submitted again");
    assert.ok(Date.now() - t0 < 8000);
  });

  test("an output file's answers are stored as its lines arrive, not once it is whole", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const release = s.batches.holdDownload(2);
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch" }) });
    const b = spawnCli(["build", "--json"], p.dir, env);
    try {
      // The first two lines are in the cache while the rest of the file is held back.
      const t0 = Date.now();
      while ((await p.cacheKeys()).length < 2) {
        assert.ok(Date.now() - t0 < 5000, "the first lines were not stored while the file was still arriving");
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(b.child.exitCode, null, "still reading the file");
    } catch (err) {
      b.child.kill("SIGKILL");
      throw err;
    } finally {
      release();
    }
    const r = await b.done;
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 4);
    assert.equal((await p.cacheKeys()).length, 4);
  });

  test("an endpoint that puts the key into a batch or file id: nothing written holds the key, the batch is cancelled, the build stops saying why", async () => {
    const key = "sk-test-echoed-0123456789abcdef";
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: key, ...POLL };
    const leaked = async (dir: string) =>
      Object.entries(await allFiles(dir))
        .filter(([path, text]) => path.includes(key) || text.includes(key))
        .map(([path]) => path);

    s.batches.echoKeyInIds("batch");
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const r = await runCli(["build"], p.dir, env);
    assert.equal(r.status, 1, r.stderr);
    assert.match(r.stderr, /put a secret .* into the id of the batch it created \(the batch is cancelled\)/);
    assert.match(r.stderr, /the build stopped/);
    assert.doesNotMatch(r.stderr, new RegExp(key));
    assert.equal(s.batches.counts.cancelled, 1);
    assert.deepEqual(await batchFiles(p), [], "no record of a batch that cannot be written down");
    assert.deepEqual(await leaked(p.dir), []);

    s.batches.echoKeyInIds("file");
    const q = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const f = await runCli(["build"], q.dir, env);
    assert.equal(f.status, 1, f.stderr);
    assert.match(f.stderr, /put a secret .* into the id of the input file it stored/);
    assert.equal(s.batches.counts.batchesCreated, 1, "no batch over that file");
    assert.equal(s.batches.counts.filesDeleted, 2, "both unused input files deleted");
    assert.deepEqual(await batchFiles(q), []);
    assert.deepEqual(await leaked(q.dir), []);
  });

  test("Ctrl-C while an output file is still arriving: exit 130, the batch's record kept; the next build reads the file again", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const release = s.batches.holdDownload(1);
    const p = await project({ "dataset.yaml": manifest({ samples: 3, mode: "batch" }) });
    const b = spawnCli(["build"], p.dir, env);
    try {
      await waitFor(() => s.batches.list()[0]?.status === "completed", 10_000, "the batch to complete");
      const t0 = Date.now();
      while ((await p.cacheKeys()).length < 1) {
        assert.ok(Date.now() - t0 < 5000, "the first line was not stored");
        await new Promise((r) => setTimeout(r, 20));
      }
      b.child.kill("SIGINT");
      const r = await b.done;
      assert.equal(r.status, 130, r.stderr);
      assert.equal((await batchFiles(p)).length, 1, "kept: the next build reads the file again");
    } catch (err) {
      b.child.kill("SIGKILL");
      throw err;
    } finally {
      release();
    }
    const again = await runCli(["build", "--json"], p.dir, env);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(JSON.parse(again.stdout).outputs[0].rows, 3);
    assert.equal(s.batches.counts.batchesCreated, 1);
  });
});
