import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { closeSync, constants, openSync, readdirSync, readFileSync } from "node:fs";
import { mkdtemp, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Cache, type CacheEntry } from "../../src/cache/store.js";
import { lockCacheForGc } from "../../src/cache/users.js";
import { build } from "../../src/commands/build.js";
import { initHashing } from "../../src/util/hash.js";
import { alterPacked, keyOf, scanPacks, testEntry } from "../helpers/cache-files.js";
import { mount } from "../helpers/mount.js";
import { TempProject } from "../helpers/project.js";

/**
 * Review of bc3079f (answers appended to a pack): each test here fails on that commit. The
 * cross-process test runs lib/ (`npm run build` first); the mount tests need root (else skipped).
 */

before(() => initHashing());

const REPO = fileURLToPath(new URL("../../", import.meta.url));

const entry = testEntry;

const tempDir = () => mkdtemp(join(tmpdir(), "synthbuild-packreview-"));
const openFds = () => readdirSync("/proc/self/fd").length;

test("an entry whose request holds the text a record starts with (extra_body {format: 2, key: …}) is stored and found", async () => {
  const dir = await tempDir();
  const cache = new Cache(dir);
  const key = keyOf(1);
  // A user's extra_body (or params, or json_schema) is an object nested in the entry's JSON,
  // serialized unescaped: `{"format":2,"key":"` then appears inside the record's first line.
  const e = entry(key, "the answer", { extra_body: { format: 2, key: "abc" } });
  let stored: CacheEntry | undefined;
  let error: unknown;
  try {
    stored = await cache.put(e);
  } catch (err) {
    error = err;
  }
  assert.equal(error, undefined, `put failed after the answer was paid for: ${(error as Error)?.message}`);
  assert.equal(stored?.response.text, "the answer");
  assert.equal((await new Cache(dir).get(key))?.response.text, "the answer", "a later reader finds it");
  await rm(dir, { recursive: true, force: true });
});

test("the completeness memo does not call a cache complete after its pack was deleted and another grew in its place", async () => {
  const dir = await tempDir();
  const lockKeys = Array.from({ length: 20 }, (_, i) => keyOf(i));
  const a = new Cache(dir);
  for (const k of lockKeys) await a.put(entry(k, `answer ${k}`));
  assert.equal(a.firstMissing(lockKeys, "lock-one"), undefined);
  a.close();
  // The answers are gone (the pack deleted by hand to free space, or by a cache cleaner) and
  // another lock's build writes a new pack of the same name. ext4 hands the freed inode out again.
  await unlink(join(dir, "packs", "000001.pack"));
  const b = new Cache(dir);
  for (let i = 100; i < 140; i++) await b.put(entry(keyOf(i), `other ${i} ${"x".repeat(200)}`));
  b.close();
  const fresh = new Cache(dir);
  for (const k of lockKeys) assert.equal(await fresh.get(k), undefined, "the lock's answers really are gone");
  assert.equal(fresh.firstMissing(lockKeys, "lock-one"), lockKeys[0], "the memo vouched for answers no pack holds");
  await rm(dir, { recursive: true, force: true });
});

test("a Cache no one closes does not keep file descriptors: library builds in one process leave none open", async () => {
  const p = await TempProject.create({
    "dataset.yaml": `version: 1
name: fds
model: { provider: echo }
dimensions:
  v: [a, b, c]
steps:
  - id: s
    generate: { prompt: "{{ v }}" }
output: { path: dist/x.jsonl, prompt: "{{ v }}", completion: "{{ s }}" }
`,
  });
  try {
    await build({ cwd: p.dir, offline: true });
    const before = openFds();
    for (let i = 0; i < 25; i++) {
      // Not a no-op each time (the stamp would skip the cache): the lock is removed, so the
      // build reads every answer from the pack.
      await rm(join(p.dir, "dataset.lock"), { force: true });
      await build({ cwd: p.dir, offline: true });
    }
    const after = openFds();
    assert.ok(after - before < 10, `${after - before} file descriptors more after 25 builds (${before} → ${after})`);
  } finally {
    await p.remove();
  }
});

test("a pack that cannot be opened (no file descriptor left) is an error, not a cache without answers", async () => {
  const dir = await tempDir();
  const writer = new Cache(dir);
  await writer.put(entry(keyOf(1), "paid for"));
  writer.close();
  const reader = new Cache(dir);
  // Every descriptor this process may have, taken (what a leak of them ends in).
  const held: number[] = [];
  let found: boolean | undefined;
  let error: unknown;
  try {
    for (;;) held.push(openSync("/dev/null", "r"));
  } catch {
    // EMFILE: all taken
  }
  try {
    found = await reader.has(keyOf(1));
  } catch (err) {
    error = err;
  } finally {
    for (const fd of held) closeSync(fd);
  }
  assert.ok(error !== undefined || found === true, "has() said an answer in the pack is absent: a build would pay for it again");
  reader.close();
  await rm(dir, { recursive: true, force: true });
});

const echoManifest = (name: string) => `version: 1
name: ${name}
model: { provider: echo }
dimensions:
  v: [a, b, c, d, e, f]
steps:
  - id: s
    generate: { prompt: "{{ v }}" }
output: { path: dist/x.jsonl, prompt: "{{ v }}", completion: "{{ s }}" }
`;

test("pull waits while gc holds the cache (as a build does): its appends would go to a pack gc is replacing", async () => {
  const a = await TempProject.create({ "dataset.yaml": echoManifest("shared") });
  const b = await TempProject.create({ "dataset.yaml": echoManifest("shared") });
  let release: (() => Promise<void>) | undefined;
  try {
    await build({ cwd: a.dir, offline: true });
    await writeFile(join(b.dir, "dataset.lock"), await a.read("dataset.lock"));
    const { pull } = await import("../../src/commands/pull.js");
    // gc of b's cache has begun: it holds the cache and has read the pack it will rewrite.
    release = await lockCacheForGc(join(b.dir, "cache"), () => {});
    const pulling = pull({ cwd: b.dir, remote: join(a.dir, "cache") }).then(() => "finished");
    const outcome = await Promise.race([pulling, new Promise((r) => setTimeout(() => r("waiting"), 1500))]);
    assert.equal(outcome, "waiting", `pull stored ${(await b.cacheKeys()).length} answers while gc held the cache`);
    await release();
    release = undefined;
    await pulling;
  } finally {
    await release?.();
    await a.remove();
    await b.remove();
  }
});

test("an answer appended by another process while gc rewrites the pack is not lost", async () => {
  const dir = await tempDir();
  // A large pack, so that the rewrite takes a while (as gc of a real cache does).
  const seed = new Cache(dir);
  const big = "y".repeat(100_000);
  for (let i = 0; i < 600; i++) await seed.put(entry(keyOf(i), `${i} ${big}`));
  seed.close();
  // Another process storing answers the way pull (putRaw), migrate and the library (put) do: none
  // of them registers in state/users, so gc does not wait for them.
  const child = `
    const { Cache, serializeEntry } = await import(${JSON.stringify(join(REPO, "lib/cache/store.js"))});
    const { initHashing } = await import(${JSON.stringify(join(REPO, "lib/util/hash.js"))});
    await initHashing();
    const cache = new Cache(${JSON.stringify(dir)});
    const until = Date.now() + 3000;
    for (let i = 0; Date.now() < until; i++) {
      const key = (0x100000 + i).toString(16).padStart(32, "0");
      try {
        await cache.putRaw(key, Buffer.from(serializeEntry(entry(key, "pulled " + i))));
        process.stdout.write("ok " + key + "\\n");
      } catch (err) {
        process.stdout.write("failed " + key + " " + err.message.split("\\n")[0] + "\\n");
      }
    }
  `;
  const acked: string[] = [];
  const failed: string[] = [];
  const done = new Promise<void>((resolve, reject) => {
    const p = spawn(process.execPath, ["--input-type=module", "-e", `const entry = ${entry.toString()};\n${child}`], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    p.stdout.on("data", (d) => {
      out += d;
      const lines = out.split("\n");
      out = lines.pop()!;
      for (const l of lines) (l.startsWith("ok ") ? acked : failed).push(l.slice(l.indexOf(" ") + 1));
    });
    p.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`writer exited ${code}`))));
  });
  while (acked.length < 50) await new Promise((r) => setTimeout(r, 20));
  // gc: remove one answer, so the pack is written anew without it.
  for (let round = 0; round < 3; round++) {
    const gc = new Cache(dir);
    await gc.remove(new Set([keyOf(round)]));
    gc.close();
    await new Promise((r) => setTimeout(r, 300));
  }
  await done;
  const reader = new Cache(dir);
  const lost: string[] = [];
  for (const k of acked) if (!(await reader.get(k))) lost.push(k);
  assert.deepEqual(
    { lost, failed },
    { lost: [], failed: [] },
    `${lost.length} of ${acked.length} answers stored (put resolved) are gone after gc's rewrite; ${failed.length} puts failed`,
  );
  reader.close();
  await rm(dir, { recursive: true, force: true });
});

test("checkWritable finds a pack that cannot be appended to before anything is paid for, not put() after", async (t) => {
  const dir = await tempDir();
  const first = new Cache(dir);
  await first.put(entry(keyOf(1), "stored by another user of a shared cache"));
  first.close();
  const pack = join(dir, "packs", "000001.pack");
  // The pack is not writable by this build (another user's file in a shared cache, mode 0644),
  // while the packs/ folder is: as root, a read-only bind mount of the file stands in for that.
  const cannot = mount(["--bind", pack, pack]) ?? mount(["-o", "remount,bind,ro", pack]);
  if (cannot) {
    mount(["-l", pack]);
    await rm(dir, { recursive: true, force: true });
    return t.skip(`cannot mount: ${cannot}`);
  }
  const cache = new Cache(dir);
  try {
    let probe: unknown;
    try {
      await cache.checkWritable();
    } catch (err) {
      probe = err;
    }
    let store: unknown;
    try {
      await cache.put(entry(keyOf(2), "an answer just paid for"));
    } catch (err) {
      store = err;
    }
    assert.ok(store, "the answer could not be stored (the test's premise)");
    assert.ok(probe, `checkWritable passed, then the paid-for answer was lost: ${(store as Error).message}`);
  } finally {
    cache.close();
    execFileSync("umount", ["-l", pack]);
    await rm(dir, { recursive: true, force: true });
  }
});

test("a read-only cache can still be read when a packed record is corrupt", async (t) => {
  const dir = await tempDir();
  const w = new Cache(dir);
  await w.put(entry(keyOf(1), "sound"));
  await w.put(entry(keyOf(2), "will rot"));
  w.close();
  const pack = join(dir, "packs", "000001.pack");
  const bytes = readFileSync(pack);
  const at = bytes.indexOf("will rot");
  const { open } = await import("node:fs/promises");
  const fh = await open(pack, "r+");
  await fh.write(Buffer.from("W"), 0, 1, at);
  await fh.close();
  const cannot = mount(["--bind", dir, dir]) ?? mount(["-o", "remount,bind,ro", dir]);
  if (cannot) {
    mount(["-l", dir]);
    await rm(dir, { recursive: true, force: true });
    return t.skip(`cannot mount: ${cannot}`);
  }
  const cache = new Cache(dir);
  try {
    assert.equal((await cache.get(keyOf(1)))?.response.text, "sound");
    let got: unknown = "not called";
    let error: unknown;
    try {
      got = await cache.get(keyOf(2));
    } catch (err) {
      error = err;
    }
    assert.equal(error, undefined, `reading a corrupt answer from a read-only cache threw: ${(error as Error)?.message}`);
    assert.equal(got, undefined);
  } finally {
    cache.close();
    execFileSync("umount", ["-l", dir]);
    await rm(dir, { recursive: true, force: true });
  }
});

test("close() while an append is in flight never lets the answer land in another file", async () => {
  const dir = await tempDir();
  const cache = new Cache(dir);
  await cache.put(entry(keyOf(1), "first"));
  // Hold the thread pool (4 threads) on FIFO opens, so the next append waits for a thread.
  const fifos = [0, 1, 2, 3].map((i) => join(dir, `fifo${i}`));
  for (const f of fifos) execFileSync("mkfifo", [f]);
  const { open } = await import("node:fs/promises");
  const blocked = fifos.map((f) => open(f, "r"));
  await new Promise((r) => setTimeout(r, 50));
  const storing = cache.put(entry(keyOf(2), "second")).catch((err: Error) => err);
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  // The write is queued on the pack's append fd; the Cache is closed (tests, the gc helper, a
  // library user), and the process opens a file of its own, which gets the freed descriptor.
  cache.close();
  const victim = join(dir, "victim.txt");
  const victimFds = [openSync(victim, "w"), openSync(victim, "w")];
  // Let the pool go (from this thread: the pool is the one held).
  const writers = fifos.map((f) => openSync(f, constants.O_WRONLY | constants.O_NONBLOCK));
  for (const fh of await Promise.all(blocked)) await fh.close();
  for (const fd of writers) closeSync(fd);
  await storing;
  for (const fd of victimFds) closeSync(fd);
  assert.equal(readFileSync(victim, "utf8"), "", "the pack's record was written into an unrelated file");
  await rm(dir, { recursive: true, force: true });
});

test("gc's rewrite leaves corrupt records out even when it removes no answer (as Cache.remove says)", async () => {
  const dir = await tempDir();
  const cache = new Cache(dir);
  await cache.put(entry(keyOf(1), "sound"));
  await cache.put(entry(keyOf(2), "rotten"));
  cache.close();
  await alterPacked(dir, keyOf(2), "rotten", "rotted");
  assert.equal((await scanPacks(dir)).corrupt.length, 1, "the test's premise: one corrupt record");
  const gc = new Cache(dir);
  // gc of a project whose lock names both: nothing to remove, but the pack is said to be
  // written again "without corrupt or duplicate records".
  await gc.remove(new Set());
  gc.close();
  assert.deepEqual((await scanPacks(dir)).corrupt, [], "the corrupt record is still in the pack after gc");
  await rm(dir, { recursive: true, force: true });
});
