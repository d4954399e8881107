import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { lockCacheForGc, useCache } from "../../src/cache/users.js";
import { InterruptedError } from "../../src/errors.js";
import { acquireBuildLock } from "../../src/project.js";

const later = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("gc waits for a registered build, and a build waits for a running gc", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-users-"));
  try {
    const order: string[] = [];
    const unuse = await useCache(dir, () => {});
    const gcDone = lockCacheForGc(dir, (w) => order.push(`gc: ${w}`)).then((release) => (order.push("gc runs"), release));
    await later(300);
    order.push("build ends");
    await unuse();
    const releaseGc = await gcDone;
    const buildDone = useCache(dir, (w) => order.push(`build: ${w}`)).then((u) => (order.push("build runs"), u));
    await later(300);
    order.push("gc ends");
    await releaseGc();
    await (await buildDone)();
    assert.deepEqual(
      order.map((o) => o.replace(/\(pid .*\)/, "(pid)")),
      [
        "gc: waiting for 1 build using this cache to finish (pid)",
        "build ends",
        "gc runs",
        "build: waiting for gc (pid) to finish with the cache",
        "gc ends",
        "build runs",
      ],
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("registrations of dead processes, and of this PID with another token, do not hold gc back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-users-"));
  try {
    await mkdir(join(dir, "state", "users"), { recursive: true });
    await writeFile(join(dir, "state", "users", "x.json"), JSON.stringify({ host: hostname(), pid: 2 ** 22 + 7, token: "dead" }));
    await writeFile(join(dir, "state", "users", "y.json"), JSON.stringify({ host: hostname(), pid: process.pid, token: "a-predecessor" }));
    const release = await lockCacheForGc(dir, () => assert.fail("gc waited for a dead build"));
    await release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a build lock left with this very PID (a restarted container) is taken over; Ctrl-C while waiting is an interruption", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-lock-"));
  try {
    const path = join(dir, ".dataset.building");
    await writeFile(path, String(process.pid));
    const release = await acquireBuildLock(path, () => assert.fail("waited for itself"));
    const waiting = new AbortController();
    const second = acquireBuildLock(path, () => waiting.abort(), waiting.signal);
    await assert.rejects(second, (e: unknown) => e instanceof InterruptedError && e.exitCode === 130);
    await release();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
