import assert from "node:assert/strict";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { before, test } from "node:test";
import { Cache, type CacheEntry } from "../../src/cache/store.js";
import { initHashing } from "../../src/util/hash.js";

before(() => initHashing());

const entry = (key: string): CacheEntry => ({
  format: 2,
  key,
  request: { provider: "echo", endpoint: "echo", model: "echo", messages: [], params: {} },
  response: { text: "t", finish_reason: "stop", usage: null, model: null, system_fingerprint: null, request_id: null },
  offline: true,
  created_at: "2026-01-01T00:00:00.000Z",
  duration_ms: 0,
});

test("firstMissing with a memo skips unchanged shards but sees a removal", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const cache = new Cache(dir);
  const keys = ["aa01", "aa02", "bb01"].map((k) => k.padEnd(32, "0"));
  for (const k of keys) await cache.put(entry(k));
  // Age the shard folders so they are remembered.
  const old = new Date(Date.now() - 60_000);
  for (const k of keys) await utimes(dirname(cache.pathOf(k)), old, old);
  assert.equal(cache.firstMissing(keys, "m1"), undefined);
  assert.equal(cache.firstMissing(keys, "m1"), undefined);
  await cache.delete(keys[1]!);
  assert.equal(cache.firstMissing(keys, "m1"), keys[1], "a removed entry changes its shard's mtime, which forces a check");
  assert.equal(cache.firstMissing([keys[0]!, keys[2]!], "m2"), undefined);
  await rm(dir, { recursive: true, force: true });
});

test("a corrupt entry is evicted on read, or only reported when asked not to evict", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const warnings: string[] = [];
  const cache = new Cache(dir, (w) => warnings.push(w));
  const key = "cc".padEnd(32, "1");
  await cache.put(entry(key));
  const { writeFile } = await import("node:fs/promises");
  await writeFile(cache.pathOf(key), '{"format":2,"key":"');
  assert.equal(await cache.get(key, { evict: false }), undefined);
  assert.equal(await cache.has(key), true);
  assert.equal(await cache.get(key), undefined);
  assert.equal(await cache.has(key), false);
  assert.match(warnings[0]!, /corrupt/);
  await rm(dir, { recursive: true, force: true });
});

test("an entry changed in place (still valid JSON) fails its checksum: a miss, never trusted", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const cache = new Cache(dir);
  const key = "dd".padEnd(32, "2");
  await cache.put({ ...entry(key), response: { ...entry(key).response, text: "the answer" } });
  assert.equal((await cache.get(key, { evict: false }))?.response.text, "the answer");
  const { readFile, writeFile } = await import("node:fs/promises");
  await writeFile(cache.pathOf(key), (await readFile(cache.pathOf(key), "utf8")).replace("the answer", "the ANSWER"));
  assert.equal(await cache.get(key), undefined);
  await rm(dir, { recursive: true, force: true });
});

test("the first answer stored under a key wins; a later writer gets it back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const a = new Cache(dir);
  const b = new Cache(dir);
  const key = "ee".padEnd(32, "3");
  const first = { ...entry(key), response: { ...entry(key).response, text: "first" } };
  const second = { ...entry(key), response: { ...entry(key).response, text: "second" } };
  const [x, y] = await Promise.all([a.put(first), b.put(second)]);
  assert.equal(x.response.text, y.response.text, "both writers name the same answer");
  assert.equal((await a.get(key))?.response.text, x.response.text);
  assert.equal((await b.put(second)).response.text, x.response.text);
  assert.deepEqual((await a.list()).strays, [], "no temp file left behind");
  await rm(dir, { recursive: true, force: true });
});
