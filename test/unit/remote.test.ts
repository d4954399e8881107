import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { DirectoryRemote } from "../../src/cache/remote/directory.js";
import { openRemote } from "../../src/cache/remote/open.js";
import type { Remote } from "../../src/cache/remote/types.js";
import { Cache, type CacheEntry } from "../../src/cache/store.js";
import { pull, push, readThrough } from "../../src/cache/sync.js";
import { WriteBack } from "../../src/cache/write-back.js";
import { initHashing } from "../../src/util/hash.js";
import { REPO } from "../helpers/cli.js";
import { BUCKET, S3_CREDENTIALS, TestS3 } from "../helpers/s3.js";

let s3: TestS3;
let tmp: string;
before(async () => {
  await initHashing();
  Object.assign(process.env, S3_CREDENTIALS);
  s3 = await TestS3.start();
  tmp = await mkdtemp(join(tmpdir(), "synthbuild-remote-"));
});
after(async () => {
  await s3.remove();
  await rm(tmp, { recursive: true, force: true });
});

const s3Remote = (prefix = `p${Math.random().toString(36).slice(2)}`) => openRemote({ url: `s3://${BUCKET}/${prefix}`, endpoint: s3.endpoint }, tmp);
const dirRemote = async () => new DirectoryRemote(await mkdtemp(join(tmp, "shared-")));
const key = (i: number) => `${(i % 256).toString(16).padStart(2, "0")}${"k".repeat(6)}${i}`;

function entry(k: string, text = `answer for ${k}`): CacheEntry {
  return {
    format: 2,
    key: k,
    request: { provider: "echo", model: "m", messages: [{ role: "user", content: k }], params: {} } as unknown as CacheEntry["request"],
    response: { text, finish_reason: "stop", usage: null, model: null, system_fingerprint: null, request_id: null },
    offline: true,
    created_at: "2026-01-01T00:00:00.000Z",
    duration_ms: 1,
  };
}

async function cacheWith(n: number): Promise<{ cache: Cache; keys: string[] }> {
  const cache = new Cache(await mkdtemp(join(tmp, "cache-")));
  const keys = Array.from({ length: n }, (_, i) => key(i));
  for (const k of keys) await cache.put(entry(k));
  return { cache, keys };
}

for (const [kind, make] of [
  ["folder", dirRemote],
  ["s3", async () => s3Remote()],
] as const) {
  test(`${kind} remote: round trip, first writer wins, list`, async (t) => {
    const remote: Remote = await make();
    const bytes = new TextEncoder().encode("first");
    assert.equal(await remote.get("ab12"), undefined);
    assert.equal(await remote.has("ab12"), false);
    assert.equal(await remote.putIfAbsent("ab12", bytes), "stored");
    assert.equal(await remote.has("ab12"), true);
    assert.deepEqual(Buffer.from((await remote.get("ab12"))!).toString(), "first");
    assert.deepEqual([...(await remote.list())], ["ab12"]);
    if (kind === "s3" && !(await honoursIfNoneMatch(remote))) return void t.skip(NO_CONDITIONAL_WRITES);
    assert.equal(await remote.putIfAbsent("ab12", new TextEncoder().encode("second")), "exists");
    assert.equal(Buffer.from((await remote.get("ab12"))!).toString(), "first");
  });

  test(`${kind} remote: push then pull into an empty cache, each entry validated`, async () => {
    const remote = await make();
    const { cache, keys } = await cacheWith(30);
    const pushed = await push(cache, remote, keys, { concurrency: 4 });
    assert.equal(pushed.transferred, 30);
    assert.equal((await push(cache, remote, keys)).present, 30, "a second push uploads nothing");
    const fresh = new Cache(await mkdtemp(join(tmp, "fresh-")));
    const pulled = await pull(fresh, remote, keys, { concurrency: 4 });
    assert.equal(pulled.transferred, 30);
    assert.equal(pulled.bytes, pushed.bytes);
    for (const k of keys) assert.deepEqual(await fresh.readRaw(k), await cache.readRaw(k));
    const other = new Cache(await mkdtemp(join(tmp, "miss-")));
    assert.deepEqual(await readThrough(other, remote, keys[3]!), { found: true, bytes: (await cache.readRaw(keys[3]!))!.byteLength });
    assert.equal((await other.get(keys[3]!))?.response.text, `answer for ${keys[3]}`);
    assert.deepEqual(await readThrough(other, remote, "ffnotthere"), { found: false, why: "missing" });
  });
}

const NO_CONDITIONAL_WRITES =
  "the S3 test server (s3rver) ignores If-None-Match: * on PUT, so first-writer-wins is checked only on servers that honour it (AWS, MinIO, R2, Ceph)";

/** s3rver ignores If-None-Match on PUT; a server that honours it gets the full test. */
async function honoursIfNoneMatch(remote: Remote): Promise<boolean> {
  const probe = `ff${Math.random().toString(36).slice(2)}`;
  await remote.putIfAbsent(probe, new Uint8Array([1]));
  return (await remote.putIfAbsent(probe, new Uint8Array([2]))) === "exists";
}

for (const kind of ["folder", "s3"] as const)
  test(`${kind} remote: two processes writing the same keys at once, the first writer of each key wins`, async (t) => {
    const remote = kind === "folder" ? await dirRemote() : s3Remote();
    if (kind === "s3" && !(await honoursIfNoneMatch(remote))) return void t.skip(NO_CONDITIONAL_WRITES);
    const url = kind === "folder" ? (remote as DirectoryRemote).root : `s3://${BUCKET}/${remote.description.split("/")[3]}`;
    await twoWriters(remote, url);
  });

async function twoWriters(remote: Remote, url: string): Promise<void> {
  const script = join(tmp, "writer.mts");
  await writeFile(
    script,
    `import { openRemote } from ${JSON.stringify(join(REPO, "src/cache/remote/open.ts"))};
const [url, who, endpoint] = process.argv.slice(2);
const r = openRemote({ url, endpoint }, process.cwd());
const out = [];
for (let i = 0; i < 200; i++) out.push(r.putIfAbsent("k" + String(i).padStart(3, "0"), new TextEncoder().encode(who + ":" + i)));
console.log(JSON.stringify(await Promise.all(out)));`,
  );
  const run = (who: string) =>
    new Promise<string[]>((resolve, reject) => {
      const c = spawn(process.execPath, ["--import", "tsx", script, url, who, s3.endpoint], { cwd: REPO });
      let out = "";
      c.stdout.on("data", (d) => (out += d));
      c.stderr.on("data", (d) => process.stderr.write(d));
      c.on("close", (code) => (code === 0 ? resolve(JSON.parse(out) as string[]) : reject(new Error(`writer ${who} exited ${code}`))));
    });
  const [a, b] = await Promise.all([run("a"), run("b")]);
  for (let i = 0; i < 200; i++) {
    const k = `k${String(i).padStart(3, "0")}`;
    assert.deepEqual([a[i], b[i]].sort(), ["exists", "stored"], `exactly one writer stored ${k}`);
    const winner = a[i] === "stored" ? "a" : "b";
    assert.equal(Buffer.from((await remote.get(k))!).toString(), `${winner}:${i}`, `${k} holds the first writer's bytes`);
  }
  assert.equal((await remote.list()).size, 200, "no temp files left behind");
}

test("s3 remote: a listing longer than one page (1,000 keys) is followed to its end", { timeout: 60_000 }, async () => {
  const remote = s3Remote();
  const keys = Array.from({ length: 1203 }, (_, i) => key(i));
  const bytes = new Uint8Array([1]);
  for (let i = 0; i < keys.length; i += 32) await Promise.all(keys.slice(i, i + 32).map((k) => remote.putIfAbsent(k, bytes)));
  assert.deepEqual([...(await remote.list())].sort(), [...keys].sort());
});

test("write-back: the remote going down mid-upload is reported key by key, nothing throws", async () => {
  const down = await TestS3.start();
  const remote = openRemote({ url: `s3://${BUCKET}/wb`, endpoint: down.endpoint }, tmp);
  const { cache, keys } = await cacheWith(40);
  let reads = 0;
  const readRaw = cache.readRaw.bind(cache);
  // The server dies while uploads are in flight: after the 10th answer is read for upload.
  cache.readRaw = async (k) => {
    if (++reads === 10) void down.stop();
    return readRaw(k);
  };
  const wb = new WriteBack(cache, remote, { concurrency: 3, retries: 2, baseDelayMs: 5 });
  for (const k of keys) wb.add(k);
  const report = await wb.flush();
  const notUploaded = report.notUploaded.map((n) => n.key);
  assert.deepEqual([...report.uploaded, ...report.present, ...notUploaded].sort(), keys.sort(), "every key is accounted for, once");
  assert.ok(report.uploaded.length >= 6 && notUploaded.length >= 25, `uploaded ${report.uploaded.length}, not ${notUploaded.length}`);
  for (const n of report.notUploaded) assert.match(n.reason, /not reachable|given up/);
  await down.start(down.port);
  const there = await remote.list();
  for (const k of report.uploaded) assert.ok(there.has(k), `${k} was reported uploaded and is on the remote`);
  await down.remove();
});

test("pull: a corrupt object is an error naming its key, and nothing corrupt is stored", async () => {
  const remote = s3Remote();
  const { cache, keys } = await cacheWith(5);
  await push(cache, remote, keys);
  const bad = keys[2]!;
  // Overwrite the object behind synthbuild's back, as a broken sync tool or bit rot would.
  await overwrite(remote, bad, "{not json");
  const fresh = new Cache(await mkdtemp(join(tmp, "fresh-")));
  await assert.rejects(pull(fresh, remote, keys), (err: Error & { problems?: unknown }) => {
    assert.match(err.message, new RegExp(`${bad}: corrupt`));
    assert.deepEqual(err.problems, [{ key: bad, problem: "corrupt" }]);
    return true;
  });
  assert.equal(await fresh.readRaw(bad), undefined, "the corrupt object was not stored");
  for (const k of keys) if (k !== bad) assert.ok(await fresh.readRaw(k), `${k} was still pulled`);
});

async function overwrite(remote: Remote, k: string, text: string): Promise<void> {
  const { S3Client, PutObjectCommand } = await import("@aws-sdk/client-s3");
  const client = new S3Client({ endpoint: s3.endpoint, forcePathStyle: true, region: "us-east-1" });
  const prefix = remote.description.replace(`s3://${BUCKET}/`, "").split(" ")[0]!;
  await client.send(new PutObjectCommand({ Bucket: BUCKET, Key: `${prefix}objects/${k.slice(0, 2)}/${k}.json`, Body: text }));
}
