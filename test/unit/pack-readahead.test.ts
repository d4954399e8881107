import assert from "node:assert/strict";
import fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { Cache } from "../../src/cache/store.js";
import { initHashing } from "../../src/util/hash.js";
import { keyOf, testEntry } from "../helpers/cache-files.js";

/**
 * The pack's read-ahead (one read of 256 KiB serving the records after it) is for reads in stored
 * order, and must cost nothing to a reader that does not go through the pack that way: `build --frozen` and
 * `verify` read every answer the lock names, sample by sample and step by step, and a step
 * edited since the first build has its answers at the pack's end, away from the steps before it.
 */

before(() => initHashing());

/** Bytes fs.readSync brought in while `fn` ran (the pack reads records with readSync). */
async function bytesRead(fn: () => Promise<void>): Promise<{ bytes: number; calls: number }> {
  const real = fs.readSync;
  let bytes = 0;
  let calls = 0;
  fs.readSync = ((...args: Parameters<typeof fs.readSync>) => {
    const n = (real as (...a: unknown[]) => number)(...args);
    bytes += n;
    calls++;
    return n;
  }) as typeof fs.readSync;
  syncBuiltinESMExports();
  try {
    await fn();
  } finally {
    fs.readSync = real;
    syncBuiltinESMExports();
  }
  return { bytes, calls };
}

const N = 600;
const text = (i: number) => `answer ${i} ${"lorem ipsum ".repeat(120)}`;

async function twoSteps(): Promise<{ dir: string; served: number }> {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-readahead-"));
  const cache = new Cache(dir);
  // The first step's answers, then (a later build, after an edit) the second step's: ~1.5 KB each, ~0.9 MB a step.
  for (let i = 0; i < N; i++) await cache.put(testEntry(keyOf(i), text(i)));
  for (let i = 0; i < N; i++) await cache.put(testEntry(keyOf(N + i), text(N + i)));
  let served = 0;
  for (let i = 0; i < 2 * N; i++) served += await cache.sizeOf(keyOf(i));
  cache.close();
  return { dir, served };
}

test("reading each sample's answers step by step, with an edited step's answers stored apart, reads about what it serves (not 256 KiB a record)", async () => {
  const { dir, served } = await twoSteps();
  try {
    const reader = new Cache(dir);
    await reader.get(keyOf(0)); // the pack indexed before counting
    const r = await bytesRead(async () => {
      for (let i = 0; i < N; i++) {
        assert.equal((await reader.get(keyOf(i)))?.response.text, text(i));
        assert.equal((await reader.get(keyOf(N + i)))?.response.text, text(N + i));
      }
    });
    reader.close();
    assert.ok(r.bytes <= 2 * served, `read ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${r.calls} reads to serve ${(served / 2 ** 20).toFixed(1)} MiB`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("reading answers in an order other than stored (a lock's order) reads about what it serves", async () => {
  const { dir, served } = await twoSteps();
  try {
    const reader = new Cache(dir);
    await reader.get(keyOf(0));
    const order = Array.from({ length: 2 * N }, (_, i) => (i * 733) % (2 * N));
    const r = await bytesRead(async () => {
      for (const i of order) assert.equal((await reader.get(keyOf(i)))?.response.text, text(i));
    });
    reader.close();
    assert.ok(r.bytes <= 2 * served, `read ${(r.bytes / 2 ** 20).toFixed(0)} MiB in ${r.calls} reads to serve ${(served / 2 ** 20).toFixed(1)} MiB`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("in stored order the read-ahead serves many records a read, each its own bytes", async () => {
  const { dir, served } = await twoSteps();
  try {
    const reader = new Cache(dir);
    await reader.get(keyOf(0));
    const r = await bytesRead(async () => {
      for (let i = 0; i < 2 * N; i++) assert.equal((await reader.get(keyOf(i)))?.response.text, text(i));
    });
    reader.close();
    assert.ok(r.calls < N / 10, `${r.calls} reads`);
    assert.ok(r.bytes <= 2 * served);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
