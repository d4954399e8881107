import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { UsageError } from "../../src/errors.js";
import { hashLock, type Lock, type LockSample, parseLock, readLock, serializeLock, writeLock } from "../../src/lock/lockfile.js";
import { canonicalJson } from "../../src/util/canonical-json.js";
import { hash64, initHashing } from "../../src/util/hash.js";

let dir = "";
before(async () => {
  await initHashing();
  dir = await mkdtemp(join(tmpdir(), "synthbuild-lock-"));
});
after(() => rm(dir, { recursive: true, force: true }));

function lockOf(n: number): Lock {
  const samples: LockSample[] = [];
  for (let i = 0; i < n; i++) {
    // Multi-byte characters everywhere, so 1 MB read boundaries fall inside them.
    samples.push({
      id: i.toString(16).padStart(16, "0"),
      values: { place: `Kyōto ${i} ✓ 𝄞` },
      repeat: 0,
      status: i % 7 ? "kept" : "dropped",
      ...(i % 7 ? {} : { reason: { step: "s", why: "too short" } }),
      steps: { s: { key: "k".repeat(32), out: "o".repeat(16), r: "r".repeat(16), usage: [i, 60] } },
    });
  }
  return {
    header: {
      lockfile: 2,
      name: "t",
      seed: 1,
      combine: { mode: "product", repeat: 1 },
      versions: { key: 2, render: 1 },
      samples: n,
      kept: n - Math.ceil(n / 7),
      dropped: Math.ceil(n / 7),
      failed: 0,
      pending: 0,
      steps: { s: { def: "d".repeat(32), kind: "generate", model: "m" } },
    },
    outputs: [{ path: "dist/x.jsonl", rows: n, hash: "h".repeat(32), def: "f".repeat(32) }],
    samples,
  };
}

test("a lock survives serialize → parse unchanged", () => {
  const lock = lockOf(50);
  const text = serializeLock(lock);
  assert.deepEqual(parseLock(text), lock);
  assert.equal(serializeLock(parseLock(text)), text);
});

test("readLock reads a large lock in pieces: the same lock, and the hash of its text", async () => {
  const text = serializeLock(lockOf(20_000));
  assert.ok(Buffer.byteLength(text) > 3 * (1 << 20), "spans several 1 MB reads");
  const path = join(dir, "big.lock");
  await writeFile(path, text);
  const read = await readLock(path);
  assert.deepEqual(read?.lock, parseLock(text));
  assert.equal(read?.hash, hash64(text));
});

test("writeLock writes the lock's text a piece at a time, hashed as hash64 hashes it whole; an unchanged lock is not rewritten", async () => {
  const lock = lockOf(20_000);
  // The text as one join of its lines, as locks were written before they were written in pieces.
  const byId = [...lock.samples].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const byPath = [...lock.outputs].sort((a, b) => (a.path < b.path ? -1 : 1));
  const whole = `${[canonicalJson(lock.header), ...byPath.map((o) => canonicalJson({ output: o.path, rows: o.rows, hash: o.hash, def: o.def })), ...byId.map((x) => canonicalJson(x))].join("\n")}\n`;
  assert.ok(Buffer.byteLength(whole) > 3 * (1 << 20), "several pieces");
  assert.equal(serializeLock(lock), whole);
  assert.equal(hashLock(lock), hash64(whole));
  const path = join(dir, "written.lock");
  assert.equal(await writeLock(path, lock), hash64(whole));
  assert.equal(await readFile(path, "utf8"), whole);
  // Unchanged: the file is left as it is (a hand-made mark shows it was not rewritten), and no temp file stays.
  await writeFile(path, "mark");
  assert.equal(await writeLock(path, lock, hash64(whole)), hash64(whole));
  assert.equal(await readFile(path, "utf8"), "mark");
  assert.deepEqual(
    (await readdir(dir)).filter((f) => f.startsWith("written.lock")),
    ["written.lock"],
  );
});

test("trailing blank lines are tolerated; a missing lock is undefined", async () => {
  const text = serializeLock(lockOf(3));
  await writeFile(join(dir, "blank.lock"), `${text}\n\n  \n`);
  assert.deepEqual((await readLock(join(dir, "blank.lock")))?.lock, lockOf(3));
  assert.equal(await readLock(join(dir, "absent.lock")), undefined);
});

test("a lock that cannot be read (a folder) is a user error without the merge-conflict hint", async () => {
  await assert.rejects(readLock(dir), (err: unknown) => err instanceof UsageError && /cannot read .*EISDIR/.test(err.message) && err.hint === undefined);
});

test("a lock that does not parse, or parses into the wrong shape, is a user error with a hint", async () => {
  const text = serializeLock(lockOf(3));
  const conflict = /merge conflict/;
  const cases: [string, RegExp, RegExp][] = [
    [text.replace("\n", "\n<<<<<<< HEAD\n"), /cannot be read/, conflict],
    [text.replace('"lockfile":2', '"lockfile":99'), /newer synthbuild \(lock format 99\)/, /synthbuild build/],
    [text.replace('"lockfile":2', '"lockfile":1'), /older synthbuild \(lock format 1/, /synthbuild build/],
    ["", /empty lock file/, conflict],
    [`${text}[1,2,3]\n`, /line 6: not a sample/, conflict],
    [`${text}{"id":"x","values":{},"repeat":0,"status":"kept","steps":{"s":{}}}\n`, /line 6: sample x step s: no recipe/, conflict],
    [text.replace('"status":"kept"', '"status":"great"'), /line \d: a sample needs/, conflict],
    [text.replace('"usage":[1,60]', '"usage":"lots"'), /usage is not/, conflict],
    [text.replace('"rows":3', '"rows":"three"'), /line 2: an output line/, conflict],
    [text.replace(/"seed":1,/, ""), /line 1: the header lacks/, conflict],
    ['"just a string"\n', /not a synthbuild lock header/, conflict],
  ];
  for (const [i, [body, message, hint]] of cases.entries()) {
    const path = join(dir, `bad${i}.lock`);
    await writeFile(path, body);
    await assert.rejects(
      readLock(path),
      (err: unknown) => err instanceof UsageError && message.test(err.message) && hint.test(err.hint ?? ""),
      `case ${i}: ${body.slice(0, 80)}`,
    );
  }
});

test("attempts (synthbuild reroll) are optional in lock format 2: read when { step: n ≥ 1 }, refused otherwise", () => {
  const header = `{"combine":{"mode":"product","repeat":1},"dropped":0,"failed":0,"kept":1,"lockfile":2,"name":"x","pending":0,"samples":1,"seed":1,"steps":{"a":{"def":"d","kind":"generate"}},"versions":{"key":2,"render":1}}`;
  const sample = (extra: string) => `{${extra}"id":"00000000000000aa","repeat":0,"status":"kept","steps":{"a":{"r":"r"}},"values":{}}`;
  assert.equal(parseLock(`${header}\n${sample("")}\n`).samples[0]!.attempts, undefined);
  const text = `${header}\n${sample('"attempts":{"a":2},')}\n`;
  const lock = parseLock(text);
  assert.deepEqual(lock.samples[0]!.attempts, { a: 2 });
  assert.equal(serializeLock(lock), text);
  for (const bad of ['"attempts":{"a":0},', '"attempts":{"a":"1"},', '"attempts":[1],'])
    assert.throws(() => parseLock(`${header}\n${sample(bad)}\n`), /attempts is not/);
});
