import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { appendFile, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Cache, serializeEntry } from "../../src/cache/store.js";
import { initHashing } from "../../src/util/hash.js";
import { keyOf, scanPacks, testEntry } from "../helpers/cache-files.js";

before(() => initHashing());

const REPO = fileURLToPath(new URL("../../", import.meta.url));

const entry = testEntry;

test("writers in four processes storing the same keys all end up naming the same answer for each", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-pack-"));
  // Each child stores 400 keys, each with its own text, in its own order, 32 at a time.
  const child = `
    const { Cache } = await import(${JSON.stringify(join(REPO, "lib/cache/store.js"))});
    const { initHashing } = await import(${JSON.stringify(join(REPO, "lib/util/hash.js"))});
    await initHashing();
    const me = process.argv[1];
    const cache = new Cache(${JSON.stringify(dir)});
    const keys = Array.from({ length: 400 }, (_, i) => i);
    let seed = Number(me) * 7919 + 1;
    for (let i = keys.length - 1; i > 0; i--) { seed = (seed * 48271) % 2147483647; const j = seed % (i + 1); [keys[i], keys[j]] = [keys[j], keys[i]]; }
    const got = {};
    let next = 0;
    await Promise.all(Array.from({ length: 32 }, async () => {
      while (next < keys.length) {
        const i = keys[next++];
        const key = i.toString(16).padStart(32, "0");
        const e = await cache.put(entry(key, "writer " + me + " of " + i + " " + "x".repeat(i % 97)));
        got[key] = e.response.text;
      }
    }));
    process.stdout.write(JSON.stringify(got));
  `;
  const runs = await Promise.all(
    [0, 1, 2, 3].map(
      (n) =>
        new Promise<Record<string, string>>((resolve, reject) => {
          const p = spawn(process.execPath, ["--input-type=module", "-e", `const entry = ${entry.toString()};\n${child}`, String(n)], {
            stdio: ["ignore", "pipe", "inherit"],
          });
          let out = "";
          p.stdout.on("data", (d) => (out += d));
          p.on("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as Record<string, string>) : reject(new Error(`writer ${n} exited ${code}`))));
        }),
    ),
  );
  const reader = new Cache(dir);
  let contested = 0;
  for (let i = 0; i < 400; i++) {
    const key = keyOf(i);
    const named = new Set(runs.map((r) => r[key]));
    assert.equal(named.size, 1, `key ${i}: the writers named ${[...named].join(" / ")}`);
    assert.equal((await reader.get(key))?.response.text, runs[0]![key], `key ${i}: a later reader finds the answer they named`);
    if (runs.some((r) => !r[key]!.startsWith(`writer ${runs.indexOf(r)} `))) contested++;
  }
  assert.ok(contested > 0, "some keys were won by another writer (the race was real)");
  const scan = await scanPacks(dir);
  assert.deepEqual(scan.corrupt, []);
  assert.deepEqual(scan.torn, [], "concurrent appends never interleave");
  assert.equal(scan.valid.length, 400);
  await rm(dir, { recursive: true, force: true });
});

test("a record cut short by a killed writer is skipped, and every record after it is still found", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-pack-"));
  const cache = new Cache(dir);
  await cache.put(entry(keyOf(1), "one"));
  const pack = join(dir, "packs", (await readdir(join(dir, "packs"))).find((n) => n.endsWith(".pack"))!);
  // Cut inside the JSON line, and (a second writer) inside the checksum line.
  const two = serializeEntry(entry(keyOf(2), "two"));
  await appendFile(pack, two.slice(0, 60));
  await cache.put(entry(keyOf(3), "three"));
  const four = serializeEntry(entry(keyOf(4), "four"));
  await appendFile(pack, four.slice(0, four.indexOf("\n") + 10));
  await cache.put(entry(keyOf(5), "five"));
  const fresh = new Cache(dir);
  assert.equal((await fresh.get(keyOf(1)))?.response.text, "one");
  assert.equal(await fresh.get(keyOf(2)), undefined);
  assert.equal((await fresh.get(keyOf(3)))?.response.text, "three");
  assert.equal(await fresh.get(keyOf(4)), undefined);
  assert.equal((await fresh.get(keyOf(5)))?.response.text, "five");
  assert.equal((await cache.get(keyOf(5)))?.response.text, "five", "the writer itself read past them too");
  const scan = await scanPacks(dir);
  assert.deepEqual(scan.valid, [keyOf(1), keyOf(3), keyOf(5)]);
  assert.deepEqual(scan.corrupt, []);
  // Storing the lost ones again works, and they are found after the torn bytes.
  await cache.put(entry(keyOf(2), "two, again"));
  assert.equal((await new Cache(dir).get(keyOf(2)))?.response.text, "two, again");
  await rm(dir, { recursive: true, force: true });
});

test("a record cut short at the end of the pack is not indexed until a whole one follows it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-pack-"));
  const cache = new Cache(dir);
  await cache.put(entry(keyOf(1), "one"));
  const pack = join(dir, "packs", "000001.pack");
  const two = serializeEntry(entry(keyOf(2), "two"));
  await appendFile(pack, two.slice(0, two.length - 5));
  const reader = new Cache(dir);
  assert.equal(await reader.get(keyOf(2)), undefined);
  // The rest arrives (a writer still writing, as another process's reader sees it).
  await appendFile(pack, two.slice(two.length - 5));
  assert.equal((await reader.get(keyOf(2), { fresh: true }))?.response.text, "two");
  await rm(dir, { recursive: true, force: true });
});

test("an answer larger than a read chunk is indexed and read whole", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-pack-"));
  const cache = new Cache(dir);
  const big = "ab".repeat(4_500_000);
  await cache.put(entry(keyOf(1), "small"));
  await cache.put(entry(keyOf(2), big));
  await cache.put(entry(keyOf(3), "after"));
  const fresh = new Cache(dir);
  assert.equal((await fresh.get(keyOf(2)))?.response.text, big);
  assert.equal((await fresh.get(keyOf(3)))?.response.text, "after");
  await rm(dir, { recursive: true, force: true });
});

test("gc's rewrite keeps the rest, and a writer opened before it writes to the new pack, not the removed one", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-pack-"));
  const writer = new Cache(dir);
  for (let i = 0; i < 20; i++) await writer.put(entry(keyOf(i), `answer ${i}`));
  await writer.put(entry(keyOf(3), "a second copy, never served"));
  const gc = new Cache(dir);
  const freed = await gc.remove(new Set([keyOf(0), keyOf(7)]));
  assert.ok(freed > 0);
  assert.deepEqual(await readdir(join(dir, "packs")), ["000002.pack"]);
  await writer.put(entry(keyOf(50), "after gc"));
  const reader = new Cache(dir);
  assert.equal(await reader.get(keyOf(0)), undefined);
  assert.equal(await reader.get(keyOf(7)), undefined);
  assert.equal((await reader.get(keyOf(3)))?.response.text, "answer 3");
  assert.equal((await reader.get(keyOf(50)))?.response.text, "after gc");
  assert.deepEqual((await reader.list()).keys, [...Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 0 && i !== 7), 50].map(keyOf).sort());
  const scan = await scanPacks(dir);
  assert.equal(scan.valid.length, 19);
  assert.deepEqual(scan.torn, []);
  await rm(dir, { recursive: true, force: true });
});

test("bytes a pack cannot hold (a format-1 entry from a remote) are stored loose, and read back", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-pack-"));
  const cache = new Cache(dir);
  const key = keyOf(9);
  const old = `${JSON.stringify({ ...entry(key, "format one"), format: 1 })}\n`;
  await cache.putRaw(key, Buffer.from(old));
  assert.deepEqual(await readdir(join(dir, "objects", key.slice(0, 2))), [`${key}.json`]);
  assert.equal((await new Cache(dir).get(key))?.response.text, "format one");
  await cache.putRaw(keyOf(10), Buffer.from(serializeEntry(entry(keyOf(10), "packed"))));
  assert.deepEqual((await scanPacks(dir)).valid, [keyOf(10)]);
  await rm(dir, { recursive: true, force: true });
});

test("records read through the read-ahead are their own bytes in any order, across its edges and past its size; a corrupt one is voided as the file has it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "synthbuild-pack-"));
  const cache = new Cache(dir);
  // Sizes from a few bytes to more than the 256 KiB read-ahead, so records straddle its edge.
  const text = (i: number) => `${i} `.repeat(i % 7 === 0 ? 40_000 + i * 100 : 1 + ((i * 37) % 900));
  for (let i = 0; i < 300; i++) await cache.put(entry(keyOf(i), text(i)));
  const order = [...Array(300).keys()];
  for (const pass of [order, [...order].reverse(), order.map((_, i) => (i * 131) % 300)]) {
    const reader = new Cache(dir);
    for (const i of pass) assert.equal((await reader.get(keyOf(i)))?.response.text, text(i), `key ${i}`);
  }
  // A byte of record 150's text changed on disk: found corrupt, voided, and its neighbours whole.
  const pack = join(dir, "packs", "000001.pack");
  const { readFile, writeFile } = await import("node:fs/promises");
  const bytes = await readFile(pack);
  const at = bytes.indexOf(Buffer.from(`"${text(150).slice(0, 8)}`));
  bytes[at + 2] = "#".charCodeAt(0);
  await writeFile(pack, bytes);
  const reader = new Cache(dir);
  assert.equal((await reader.get(keyOf(149)))?.response.text, text(149));
  assert.equal(await reader.get(keyOf(150)), undefined);
  assert.equal((await reader.get(keyOf(151)))?.response.text, text(151));
  const scan = await scanPacks(dir);
  assert.equal(scan.valid.length, 299);
  assert.ok(!scan.valid.includes(keyOf(150)));
  await rm(dir, { recursive: true, force: true });
});
