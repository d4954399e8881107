// From the adversarial review of the CANCEL signal and the piecewise lock (both fixed): the undici
// transport kept a dependant signal per request on the build's signal; a failed fsync of the lock
// left its temp file and handle behind; and the lock's bytes and hash are the ones of before.
import assert from "node:assert/strict";
import { mkdtemp, open, readdir, readFile, rm } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { hashLock, type Lock, serializeLock, writeLock } from "../../src/lock/lockfile.js";
import { CANCEL } from "../../src/providers/http-fetch.js";
import { createFetch } from "../../src/providers/undici-fetch.js";
import { canonicalJson } from "../../src/util/canonical-json.js";
import { hash64, initHashing } from "../../src/util/hash.js";

let server: Server;
let base = "";
let dir = "";
before(async () => {
  await initHashing();
  dir = await mkdtemp(join(tmpdir(), "synthbuild-review-"));
  server = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res.end("{}");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(async () => {
  server.close();
  await rm(dir, { recursive: true, force: true });
});

const dependants = (s: AbortSignal): number => {
  const k = Object.getOwnPropertySymbols(s).find((x) => String(x) === "Symbol(kDependantSignals)");
  return k ? ((s as unknown as Record<symbol, Set<unknown>>)[k]?.size ?? 0) : 0;
};

test("undici transport: the build's long-lived signal (CANCEL) keeps nothing per request", async () => {
  const f = createFetch({ env: {} });
  // As the resolver makes it: AbortSignal.any([build, abandon]).
  const build = new AbortController();
  const abandon = new AbortController();
  const requestSignal = AbortSignal.any([build.signal, abandon.signal]);
  for (let i = 0; i < 1000; i += 50)
    await Promise.all(
      Array.from({ length: 50 }, async () => {
        const sdk = new AbortController(); // the SDK's own per-request timeout controller
        const r = await f(`${base}/x`, { method: "POST", body: "{}", signal: sdk.signal, [CANCEL]: requestSignal } as RequestInit);
        await r.text();
      }),
    );
  for (let k = 0; k < 5; k++) {
    await new Promise((r) => setTimeout(r, 20));
    (globalThis as { gc?: () => void }).gc?.();
  }
  const kept = dependants(build.signal);
  assert.ok(kept < 100, `the build's signal holds ${kept} dependant signals after 1000 requests`);
});

/** serializeLock as of 2cded03. */
function oldSerialize(lock: Lock): string {
  const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const lines = [canonicalJson(lock.header)];
  for (const o of [...lock.outputs].sort((a, b) => cmp(a.path, b.path))) lines.push(canonicalJson({ output: o.path, rows: o.rows, hash: o.hash, def: o.def }));
  for (const s of [...lock.samples].sort((a, b) => cmp(a.id, b.id))) lines.push(canonicalJson(s));
  return lines.join("\n") + "\n";
}

const header = { lockfile: 2, name: "t", seed: 1 } as unknown as Lock["header"];

test("lock text and hash are the old ones: empty lock, a piece ending exactly at 1 MB, astral characters", async () => {
  const empty: Lock = { header, outputs: [], samples: [] };
  // One sample whose line makes the first piece exactly 1 << 20 UTF-16 units.
  const headLen = canonicalJson(header).length + 1;
  const mk = (id: string, pad: number) => ({ id, values: { v: "𝄞".repeat(pad) }, repeat: 0, status: "kept", steps: {} }) as unknown as Lock["samples"][number];
  const probe = canonicalJson(mk("a", 0)).length + 1;
  const exact: Lock = { header, outputs: [], samples: [mk("a", ((1 << 20) - headLen - probe) / 2), mk("b", 3)] };
  assert.equal(canonicalJson(header).length + 1 + canonicalJson(exact.samples[0]).length + 1, 1 << 20);
  for (const lock of [empty, exact]) {
    const text = oldSerialize(lock);
    assert.equal(serializeLock(lock), text);
    assert.equal(hashLock(lock), hash64(text));
    const path = join(dir, `l${lock.samples.length}.lock`);
    assert.equal(await writeLock(path, lock), hash64(text));
    assert.equal(await readFile(path, "utf8"), text);
  }
});

test("writeLock: a failed fsync leaves no temp file and no open file behind (as writeFileAtomic did)", async () => {
  const lock: Lock = { header, outputs: [], samples: [] };
  const probe = await open(join(dir, "probe"), "w");
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const sync = proto.sync;
  proto.sync = () => Promise.reject(Object.assign(new Error("EIO: i/o error, fsync"), { code: "EIO" }));
  const sub = await mkdtemp(join(dir, "fsync-"));
  // A FileHandle's close is its own (not its prototype's): the open descriptors tell instead.
  const fds = async () => (await readdir("/proc/self/fd")).length;
  const before = await fds();
  try {
    await assert.rejects(writeLock(join(sub, "dataset.lock"), lock), { code: "EIO" });
  } finally {
    proto.sync = sync;
  }
  assert.deepEqual(await readdir(sub), [], "a temp file was left behind");
  assert.equal(await fds(), before, "the temp file's handle was never closed");
});
