import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { claimPath, withClaim } from "../../src/cache/batch-claim.js";
import { initHashing } from "../../src/util/hash.js";

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function claimFile(holder: { host: string; pid: number; token: string }, ageMs = 0): Promise<{ dir: string; path: string }> {
  await initHashing();
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-claim-"));
  const path = claimPath(dir, "http://x/v1", "m");
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, JSON.stringify(holder));
  const t = new Date(Date.now() - ageMs);
  await utimes(path, t, t);
  return { dir, path };
}

test("a claim another live build holds is waited for, then had once that build lets it go", async () => {
  // The test runner's own parent: alive, and not this process.
  const { dir, path } = await claimFile({ host: hostname(), pid: process.ppid, token: "other" });
  try {
    const waited: number[] = [];
    const had = withClaim(path, async (c) => (await c.holds()) && JSON.parse(await readFile(path, "utf8")).pid, { onWait: (h) => waited.push(h.pid) });
    await later(300);
    assert.deepEqual(waited, [process.ppid]);
    await rm(path);
    assert.equal(await had, process.pid);
    await assert.rejects(readFile(path), "released when done");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a claim of a dead PID, of this PID without its queue (a restarted container), or past its lease is taken over at once", async () => {
  const holders = [
    { holder: { host: hostname(), pid: 2 ** 22 + 7, token: "dead" }, age: 0 },
    { holder: { host: hostname(), pid: process.pid, token: "a-predecessor" }, age: 0 },
    { holder: { host: "another-machine", pid: process.ppid, token: "silent" }, age: 5000 },
  ];
  for (const { holder, age } of holders) {
    const { dir, path } = await claimFile(holder, age);
    try {
      const r = await withClaim(path, async (c) => c.holds(), { leaseMs: 1000, onWait: () => assert.fail(`waited for ${holder.token}`) });
      assert.equal(r, true, holder.token);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
});

test("another machine's claim within its lease is waited for; this process's claims queue; a claim taken over is not removed by its old holder", async () => {
  const { dir, path } = await claimFile({ host: "another-machine", pid: 1, token: "busy" });
  try {
    let waited = false;
    const ac = new AbortController();
    const interrupted = withClaim(path, async () => assert.fail("had"), { signal: ac.signal, onWait: () => (waited = true) });
    await later(250);
    assert.equal(waited, true);
    ac.abort();
    assert.equal(await interrupted, undefined, "interrupted while waiting");
    await rm(path);

    const order: string[] = [];
    const first = withClaim(path, async (c) => {
      order.push("first");
      await later(100);
      // Taken over as stale while this holder slept: no longer its, and left to its new holder.
      await writeFile(path, JSON.stringify({ host: hostname(), pid: process.ppid, token: "new" }));
      assert.equal(await c.holds(), false);
      order.push("first ends");
    });
    const second = withClaim(path, async () => order.push("second"), { leaseMs: 200 });
    await first;
    assert.equal(JSON.parse(await readFile(path, "utf8")).token, "new");
    await rm(path);
    await second;
    assert.deepEqual(order, ["first", "first ends", "second"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
