import assert from "node:assert/strict";
import fs from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { syncBuiltinESMExports } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { before, test } from "node:test";
import { Pack } from "../../src/cache/pack.js";
import { Cache, entryBytes } from "../../src/cache/store.js";
import { initHashing } from "../../src/util/hash.js";
import { keyOf, testEntry } from "../helpers/cache-files.js";

/** Review of e3bee0f and f1f269b (pack fixes): each test here fails on f1f269b. */

before(() => initHashing());

const entry = testEntry;
const tempDir = () => mkdtemp(join(tmpdir(), "synthbuild-packfix-"));

/** The pack's write lands in the file now, its callback runs when release() is called. */
function holdWriteCallbacks(): { held: () => number; release: () => void } {
  const real = fs.write;
  const held: (() => void)[] = [];
  (fs as { write: unknown }).write = (...args: unknown[]) => {
    const cb = args.pop() as (...r: unknown[]) => void;
    (real as (...a: unknown[]) => void)(...args, (...r: unknown[]) => held.push(() => cb(...r)));
  };
  syncBuiltinESMExports();
  return {
    held: () => held.length,
    release: () => {
      fs.write = real;
      syncBuiltinESMExports();
      for (const f of held) f();
    },
  };
}

async function untilHeld(h: { held: () => number }): Promise<void> {
  for (let i = 0; i < 500 && h.held() === 0; i++) await new Promise((r) => setTimeout(r, 2));
  assert.equal(h.held(), 1, "the append's write was not issued");
}

test("a write whose pack another process's gc replaced, seen by a fresh read during the write, is written again, not failed with EBADF", async () => {
  const dir = await tempDir();
  const a = new Cache(dir);
  await a.put(entry(keyOf(1), "one"));
  await a.put(entry(keyOf(9), "to remove"));
  const h = holdWriteCallbacks();
  const storing = a.put(entry(keyOf(2), "two")).then(
    (e) => e,
    (err: Error) => err,
  );
  await untilHeld(h);
  // Another process's gc replaces 000001.pack (a writer it did not wait for: the case the
  // re-queue exists for), and this process reads afresh while its write is in flight.
  const g = new Cache(dir);
  await g.remove(new Set([keyOf(9)]));
  g.close();
  await a.get(keyOf(3), { fresh: true });
  h.release();
  const got = await storing;
  assert.ok(!(got instanceof Error), `put failed although its answer was written: ${(got as Error).message}`);
  assert.equal((await new Cache(dir).get(keyOf(2)))?.response.text, "two");
  a.close();
  await rm(dir, { recursive: true, force: true });
});

test("close() while an append is in flight: the put of an answer that is in the pack resolves, not rejects", async () => {
  const dir = await tempDir();
  const a = new Cache(dir);
  await a.put(entry(keyOf(1), "one"));
  const h = holdWriteCallbacks();
  const storing = a.put(entry(keyOf(2), "two")).then(
    (e) => e,
    (err: Error) => err,
  );
  await untilHeld(h);
  a.close();
  h.release();
  const got = await storing;
  assert.equal((await new Cache(dir).get(keyOf(2)))?.response.text, "two", "the answer is in the pack");
  assert.ok(!(got instanceof Error), `put rejected for an answer that was stored: ${(got as Error).message}`);
  a.close();
  await rm(dir, { recursive: true, force: true });
});

// Known limit, kept as a todo: for writers gc waits for (every command that stores answers
// registers in state/users) this cannot happen. For one it does not wait for, the carry-over now
// runs before the rename too, which leaves only the moment between the rename and the unlink's
// carry-over; a record landing in the old pack then, while another writer's lands in the new one,
// still changes the key's answer. Closing that needs exclusion, which registration is.
test("gc's carry-over keeps the packs' order: a key's answer does not change from the one readers saw first", {
  todo: "only registration (useCache) excludes it: a writer gc does not wait for can still race the moment between rename and carry-over",
}, async () => {
  const dir = await tempDir();
  const c = new Cache(dir);
  await c.put(entry(keyOf(1), "one"));
  await c.put(entry(keyOf(9), "to remove"));
  c.close();
  const k = keyOf(5);
  const v1 = entryBytes(entry(k, "v1 (landed first, in the old pack)"));
  const v2 = entryBytes(entry(k, "v2 (landed later, in the new pack)"));
  const appendRaw = (path: string, b: Buffer) => {
    const fd = fs.openSync(path, fs.constants.O_WRONLY | fs.constants.O_APPEND);
    fs.writeSync(fd, b);
    fs.closeSync(fd);
  };
  const realRename = fs.renameSync;
  let seenMidway: string | undefined;
  fs.renameSync = (from: fs.PathLike, to: fs.PathLike) => {
    if (!String(from).includes(".pack.tmp-")) return realRename(from, to);
    // A writer gc did not wait for lands in the old pack after gc read it...
    appendRaw(join(dir, "packs", "000001.pack"), v1);
    realRename(from, to);
    // ...and another, that listed the packs after the rename, lands in the new one.
    appendRaw(String(to), v2);
    // A reader now (both packs listed, oldest first) is told v1, as the first writer was.
    const reader = new Pack(dir, () => true);
    seenMidway = [...reader.candidates(k)][0]?.toString("utf8");
    reader.close();
  };
  syncBuiltinESMExports();
  try {
    const g = new Cache(dir);
    await g.remove(new Set([keyOf(9)]));
    g.close();
  } finally {
    fs.renameSync = realRename;
    syncBuiltinESMExports();
  }
  assert.ok(seenMidway?.includes("v1"), "the reader midway saw v1");
  const after = await new Cache(dir).get(k);
  assert.equal(after?.response.text, "v1 (landed first, in the old pack)", "after gc the key names another answer");
  await rm(dir, { recursive: true, force: true });
});

test("voiding a corrupt record writes to the file it was read from, not to another pack that took its name", async () => {
  const dir = await tempDir();
  const a = new Cache(dir);
  const k = keyOf(1);
  await a.put(entry(k, "one"));
  // Corrupt the record in place (its text, same length), then load it in `a`.
  const p1 = join(dir, "packs", "000001.pack");
  const text = fs.readFileSync(p1, "latin1");
  fs.writeFileSync(p1, text.replace('"one"', '"onf"'), "latin1");
  await a.get(keyOf(7)); // loads (indexes) the pack as it is
  // The packs are deleted (by hand, a cache cleaner) and another build starts 000001.pack again.
  await rm(join(dir, "packs"), { recursive: true, force: true });
  const b = new Cache(dir);
  await b.put(entry(keyOf(2), "two"));
  b.close();
  // `a` reads its corrupt record (from the descriptor it holds) and voids it... by path.
  assert.equal(await a.get(k), undefined);
  a.close();
  assert.equal((await new Cache(dir).get(keyOf(2)))?.response.text, "two", "another build's answer was voided");
  await rm(dir, { recursive: true, force: true });
});
