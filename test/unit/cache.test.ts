import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { before, test } from "node:test";
import { Cache, type CacheEntry, entryBytes, parseEntry, serializeEntry } from "../../src/cache/store.js";
import { initHashing } from "../../src/util/hash.js";
import { alterPacked, scanPacks } from "../helpers/cache-files.js";

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

test("firstMissing with a memo skips what cannot have changed but sees a removal", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const cache = new Cache(dir);
  const keys = ["aa01", "aa02", "bb01"].map((k) => k.padEnd(32, "0"));
  for (const k of keys) await cache.put(entry(k));
  assert.equal(cache.firstMissing(keys, "m1"), undefined);
  assert.equal(cache.firstMissing(keys, "m1"), undefined);
  await cache.put(entry("cc01".padEnd(32, "0")));
  assert.equal(new Cache(dir).firstMissing(keys, "m1"), undefined, "a pack that grew lost nothing");
  await new Cache(dir).remove(new Set([keys[1]!]));
  assert.equal(new Cache(dir).firstMissing(keys, "m1"), keys[1], "gc writes a new pack, which forces a check");
  assert.equal(cache.firstMissing([keys[0]!, keys[2]!], "m2"), undefined);
  await rm(dir, { recursive: true, force: true });
});

test("firstMissing with a memo sees a loose entry (an older version's) removed", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const cache = new Cache(dir);
  const keys = ["aa01", "aa02", "bb01"].map((k) => k.padEnd(32, "0"));
  for (const k of keys) await writeLoose(cache, entry(k));
  // Age the shard folders so they are remembered.
  const old = new Date(Date.now() - 60_000);
  for (const k of keys) await utimes(dirname(cache.pathOf(k)), old, old);
  assert.equal(cache.firstMissing(keys, "m1"), undefined);
  assert.equal(cache.firstMissing(keys, "m1"), undefined);
  await cache.delete(keys[1]!);
  assert.equal(cache.firstMissing(keys, "m1"), keys[1], "a removed entry changes its shard's mtime, which forces a check");
  await rm(dir, { recursive: true, force: true });
});

test("a corrupt packed entry is reported and voided on read, or only reported when asked not to evict", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const warnings: string[] = [];
  const cache = new Cache(dir, (w) => warnings.push(w));
  const key = "cc".padEnd(32, "1");
  await cache.put(entry(key));
  await alterPacked(dir, key, '"text":"t"', '"text":"u"');
  assert.equal(await cache.get(key, { evict: false }), undefined);
  assert.equal(await cache.has(key), true);
  assert.equal(cache.firstMissing([key]), undefined, "presence only: the corrupt record is still there");
  assert.equal(await cache.get(key), undefined);
  assert.match(warnings[0]!, /corrupt/);
  assert.equal(await cache.has(key), false);
  assert.equal(new Cache(dir).firstMissing([key]), key, "voided: no reader finds it again");
  assert.deepEqual((await scanPacks(dir)).corrupt, [], "nothing framed as an entry is left corrupt");
  const again = await cache.put({ ...entry(key), response: { ...entry(key).response, text: "asked again" } });
  assert.equal(again.response.text, "asked again");
  assert.equal((await new Cache(dir).get(key))?.response.text, "asked again");
  await rm(dir, { recursive: true, force: true });
});

test("a corrupt loose entry is evicted on read, or only reported when asked not to evict", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const warnings: string[] = [];
  const cache = new Cache(dir, (w) => warnings.push(w));
  const key = "cc".padEnd(32, "1");
  await writeLoose(cache, entry(key));
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
  await alterPacked(dir, key, "the answer", "the ANSWER");
  assert.equal(await new Cache(dir).get(key), undefined);
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
  assert.equal((await new Cache(dir).get(key))?.response.text, x.response.text, "a reader that comes later finds the same one");
  assert.deepEqual((await a.list()).strays, [], "no temp file left behind");
  await rm(dir, { recursive: true, force: true });
});

test("a loose entry (an older version's) is read, and wins over a packed answer stored later", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-cache-"));
  const cache = new Cache(dir);
  const key = "ff".padEnd(32, "4");
  await writeLoose(cache, { ...entry(key), response: { ...entry(key).response, text: "loose" } });
  assert.equal((await cache.get(key))?.response.text, "loose");
  assert.equal((await cache.put({ ...entry(key), response: { ...entry(key).response, text: "new" } })).response.text, "loose");
  assert.deepEqual((await scanPacks(dir)).valid, [], "nothing packed: the loose answer was there first");
  assert.deepEqual((await cache.list()).keys, [key]);
  await rm(dir, { recursive: true, force: true });
});

/** An entry as versions before packs stored it: one file, written whole. */
async function writeLoose(cache: Cache, e: CacheEntry): Promise<void> {
  await mkdir(dirname(cache.pathOf(e.key)), { recursive: true });
  await writeFile(cache.pathOf(e.key), serializeEntry(e));
}

test("an entry's bytes, encoded straight into a buffer, are its serialized text's UTF-8", () => {
  for (const text of ["plain", "é…日本\u{1F600}", 'line\nbreak "quoted" \\ \u0000', "x".repeat(70_000)]) {
    const e = { ...entry("ab".padEnd(32, "5")), response: { ...entry("ab".padEnd(32, "5")).response, text } };
    assert.deepEqual(entryBytes(e), Buffer.from(serializeEntry(e), "utf8"));
    assert.equal(parseEntry(entryBytes(e).toString("utf8"), e.key)?.response.text, text);
  }
});
