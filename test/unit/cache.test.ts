import assert from "node:assert/strict";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { Cache, type CacheEntry } from "../../src/cache/store.js";

const entry = (key: string): CacheEntry => ({
  format: 1,
  key,
  request: { provider: "echo", endpoint: "echo", model: "echo", messages: [], params: {} },
  response: { text: "t", finish_reason: "stop", usage: null, model: null, system_fingerprint: null, request_id: null },
  offline: true,
  created_at: "2026-01-01T00:00:00.000Z",
  duration_ms: 0,
});

test("hasAll with a memo skips unchanged shards but sees a removal", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const cache = new Cache(dir);
  const keys = ["aa01", "aa02", "bb01"].map((k) => k.padEnd(32, "0"));
  for (const k of keys) await cache.put(entry(k));
  // Age the shard folders so they are remembered.
  const old = new Date(Date.now() - 60_000);
  for (const k of keys) await utimes(dirname(cache.pathOf(k)), old, old);
  assert.equal(cache.hasAll(keys, "m1"), true);
  assert.equal(cache.hasAll(keys, "m1"), true);
  await cache.delete(keys[1]!);
  assert.equal(cache.hasAll(keys, "m1"), false, "a removed entry changes its shard's mtime, which forces a check");
  assert.equal(cache.hasAll([keys[0]!, keys[2]!], "m2"), true);
  await rm(dir, { recursive: true, force: true });
});

test("a corrupt entry is evicted on read, or only reported when asked not to evict", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const warnings: string[] = [];
  const cache = new Cache(dir, (w) => warnings.push(w));
  const key = "cc".padEnd(32, "1");
  await cache.put(entry(key));
  const { writeFile } = await import("node:fs/promises");
  await writeFile(cache.pathOf(key), '{"format":1,"key":"');
  assert.equal(await cache.get(key, { evict: false }), undefined);
  assert.equal(await cache.has(key), true);
  assert.equal(await cache.get(key), undefined);
  assert.equal(await cache.has(key), false);
  assert.match(warnings[0]!, /corrupt/);
  await rm(dir, { recursive: true, force: true });
});
