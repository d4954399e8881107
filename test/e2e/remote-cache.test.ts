import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { BUCKET, S3_CREDENTIALS, TestS3 } from "../helpers/s3.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

const manifest = (remote: string) => `version: 1
name: shared
model: { provider: echo }
dimensions:
  colour: [red, green, blue, cyan]
  size: [small, large]
steps:
  - id: story
    generate: { prompt: "{{ nonce }} a {{ size }} {{ colour }} thing" }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ colour }} {{ size }}", completion: "{{ story }}" }
cache:
  remote: ${remote}
  endpoint: \${S3_ENDPOINT}
`;

let s3: TestS3;
const projects: TempProject[] = [];
before(async () => {
  s3 = await TestS3.start();
});
after(async () => {
  await s3.remove();
  for (const p of projects) await p.remove();
});

async function project(remote = `s3://${BUCKET}/team${projects.length}`): Promise<TempProject> {
  const p = await TempProject.create({ "dataset.yaml": manifest(remote) });
  projects.push(p);
  return p;
}

const env = () => ({ ...S3_CREDENTIALS, S3_ENDPOINT: s3.endpoint });

test("push, then pull into a fresh clone, then build --frozen: the same dist/ and lock, no request", async () => {
  const a = await project();
  assert.equal((await runCli(["build", "--offline", "-q"], a.dir, env())).status, 0);
  const pushed = await runCli(["push", "--json"], a.dir, env());
  assert.equal(pushed.status, 0, pushed.stderr);
  // The build uploaded each answer as it arrived: push finds them there.
  assert.deepEqual([JSON.parse(pushed.stdout).transferred, JSON.parse(pushed.stdout).present], [0, 8]);
  assert.match(pushed.stderr, /pushed 0 answers \([\d.]+ KiB\) in [\d.]+ s.* to s3:\/\/team-cache\/team0\/ at http:\/\/127\.0\.0\.1:\d+; 8 already there/);
  // Node 20 is supported: the AWS SDK's notice about its later releases is not printed by every command.
  assert.doesNotMatch(pushed.stderr, /NodeVersionSupportWarning|AWS SDK/);

  const b = await project();
  await writeFile(join(b.dir, "dataset.yaml"), await a.read("dataset.yaml"));
  await writeFile(join(b.dir, "dataset.lock"), await a.read("dataset.lock"));
  const pulled = await runCli(["pull", "--json"], b.dir, env());
  assert.equal(pulled.status, 0, pulled.stderr);
  assert.equal(JSON.parse(pulled.stdout).transferred, 8);
  assert.match(pulled.stderr, /pulled 8 answers/);
  const frozen = await runCli(["build", "--frozen", "--offline", "--json"], b.dir, env());
  assert.equal(frozen.status, 0, frozen.stderr);
  assert.equal(JSON.parse(frozen.stdout).requests, 0);
  assert.deepEqual(await b.snapshot(), await a.snapshot());
  assert.equal(await b.read("dataset.lock"), await a.read("dataset.lock"));
  const again = await runCli(["pull", "--json"], b.dir, env());
  assert.deepEqual([JSON.parse(again.stdout).transferred, JSON.parse(again.stdout).present], [0, 8]);
});

test("wrong credentials: exit 2, which remote and what to check, no secret printed", async () => {
  const p = await project();
  assert.equal((await runCli(["build", "--offline", "-q"], p.dir, env())).status, 0);
  const secret = "wJalrXUtnFEMI-very-secret-value";
  const r = await runCli(["push", "--json"], p.dir, { ...env(), AWS_ACCESS_KEY_ID: "AKIAWRONGKEY0000", AWS_SECRET_ACCESS_KEY: secret });
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /s3:\/\/team-cache\/team\d\/ at http:\/\/127\.0\.0\.1:\d+ refused to list \(InvalidAccessKeyId, HTTP 403\)/);
  assert.match(r.stderr, /hint: check the credentials/);
  assert.equal(JSON.parse(r.stdout).error.exit_code, 2);
  for (const out of [r.stdout, r.stderr]) {
    assert.ok(!out.includes(secret), "the secret key is never printed");
    assert.ok(!out.includes("AKIAWRONGKEY0000"), "nor the access key id");
  }
});

test("pull of a corrupt object fails naming the key and stores nothing corrupt", async () => {
  const remoteDir = await TempProject.create();
  projects.push(remoteDir);
  const a = await project(remoteDir.dir);
  assert.equal((await runCli(["build", "--offline", "-q"], a.dir, env())).status, 0);
  assert.equal((await runCli(["push"], a.dir, env())).status, 0);
  const shard = (await readdir(join(remoteDir.dir, "objects")))[0]!;
  const file = (await readdir(join(remoteDir.dir, "objects", shard)))[0]!;
  const key = file.slice(0, -5);
  const text = await readFile(join(remoteDir.dir, "objects", shard, file), "utf8");
  await writeFile(join(remoteDir.dir, "objects", shard, file), text.replace(/"text":"/, '"text":1,"x":"'));

  const b = await project(remoteDir.dir);
  await writeFile(join(b.dir, "dataset.lock"), await a.read("dataset.lock"));
  const r = await runCli(["pull", "--json"], b.dir, env());
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, new RegExp(`1 of 8 answers could not be pulled[\\s\\S]*${key}: corrupt`));
  assert.deepEqual(JSON.parse(r.stdout).error.problems, [{ key, problem: "corrupt" }]);
  const local = await b.cacheKeys();
  assert.equal(local.length, 7);
  assert.ok(!local.includes(key), "the corrupt answer is not in the local cache");
});

test("push or pull with no remote configured is a usage error; --remote supplies one", async () => {
  const p = await TempProject.create({ "dataset.yaml": manifest("x").replace(/cache:[\s\S]*$/, "") });
  projects.push(p);
  assert.equal((await runCli(["build", "--offline", "-q"], p.dir)).status, 0);
  for (const cmd of ["push", "pull"]) {
    const r = await runCli([cmd], p.dir);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${cmd} needs a remote cache, and none is configured\\n  hint: add \`cache: \\{ remote: s3://bucket/prefix \\}\``));
  }
  const r = await runCli(["--remote", "shared-folder", "push"], p.dir);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /pushed 8 answers/);
  assert.equal((await readdir(join(p.dir, "shared-folder", "objects"))).length > 0, true);
});

describe("build with a remote cache", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ latencyMs: 100 });
  });
  after(() => server.close());

  const online = (remote: string, values = "red, green, blue, cyan") => `version: 1
name: shared-online
model: { name: test-model, base_url: "\${TEST_BASE_URL}", concurrency: 2 }
dimensions:
  colour: [${values}]
steps:
  - id: story
    generate: { prompt: "{{ nonce }} a {{ colour }} thing" }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ colour }}", completion: "{{ story }}" }
cache:
  remote: ${remote}
  endpoint: \${S3_ENDPOINT}
`;
  const envOnline = () => ({ ...env(), TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-remote" });

  test("new answers are uploaded as they arrive; a teammate's build reads them through, and --frozen fetches what the lock names", async () => {
    const remote = `s3://${BUCKET}/online${projects.length}`;
    const a = await project(remote);
    await writeFile(join(a.dir, "dataset.yaml"), online(remote));
    server.reset();
    const built = await runCli(["build", "--json"], a.dir, envOnline());
    assert.equal(built.status, 0, built.stderr);
    assert.equal(server.requests.length, 4);
    assert.deepEqual([JSON.parse(built.stdout).remote.uploaded, JSON.parse(built.stdout).remote.not_uploaded], [4, []]);

    // A teammate with the manifest only: every answer comes from the remote, none is requested.
    const b = await project(remote);
    await writeFile(join(b.dir, "dataset.yaml"), online(remote));
    server.reset();
    const through = await runCli(["build", "--json"], b.dir, envOnline());
    assert.equal(through.status, 0, through.stderr);
    assert.equal(server.requests.length, 0);
    assert.equal(JSON.parse(through.stdout).remote.fetched, 4);
    assert.equal(await b.read("dataset.lock"), await a.read("dataset.lock"));

    // CI with the manifest and the lock, an empty cache, no pull, no key: --frozen fetches.
    const c = await project(remote);
    await writeFile(join(c.dir, "dataset.yaml"), online(remote));
    await writeFile(join(c.dir, "dataset.lock"), await a.read("dataset.lock"));
    const frozen = await runCli(["build", "--frozen", "--json"], c.dir, { ...env(), TEST_BASE_URL: server.baseURL });
    assert.equal(frozen.status, 0, frozen.stderr);
    assert.equal(server.requests.length, 0);
    assert.equal(JSON.parse(frozen.stdout).remote.fetched, 4, "--json says what the gate fetched");
    assert.deepEqual(await c.snapshot(), await a.snapshot());
  });

  test("a corrupt object on the remote: --frozen fails naming the sample, and stores nothing", async () => {
    const remote = `s3://${BUCKET}/corrupt${projects.length}`;
    const a = await project(remote);
    await writeFile(join(a.dir, "dataset.yaml"), online(remote, "red"));
    assert.equal((await runCli(["build"], a.dir, envOnline())).status, 0);
    const lock = await a.read("dataset.lock");
    const { id, steps } = JSON.parse(lock.split("\n")[2]!) as { id: string; steps: { story: { key: string } } };
    const objects = join(s3.dir, BUCKET);
    const files = await readdirRecursive(objects);
    const object = files.find((f) => f.includes(steps.story.key) && !f.includes("metadata"))!;
    assert.ok(object, `the object for ${steps.story.key} is on the remote`);
    await writeFile(object, (await readFile(object, "utf8")).replace("TEST ANSWER", "TEST ANSWXR"));
    const c = await project(remote);
    await writeFile(join(c.dir, "dataset.yaml"), online(remote, "red"));
    await writeFile(join(c.dir, "dataset.lock"), lock);
    const frozen = await runCli(["build", "--frozen"], c.dir, { ...env(), TEST_BASE_URL: server.baseURL });
    assert.equal(frozen.status, 1, frozen.stderr);
    assert.match(frozen.stderr, new RegExp(`sample ${id}: answer ${steps.story.key} is corrupt on the remote`));
    assert.deepEqual(await c.cacheKeys(), []);
  });

  test("the remote going down mid-build: the build finishes locally and says what was not uploaded", { timeout: 30_000 }, async () => {
    const down = await TestS3.start();
    try {
      const p = await project(`s3://${BUCKET}/down`);
      await writeFile(join(p.dir, "dataset.yaml"), online(`s3://${BUCKET}/down`, "a, b, c, d, e, f, g, h, i, j"));
      server.reset();
      server.setLatency(300);
      const building = runCli(["build", "--json"], p.dir, { ...envOnline(), S3_ENDPOINT: down.endpoint });
      while (server.stats().answered < 3) await new Promise((r) => setTimeout(r, 20));
      await down.stop();
      const r = await building;
      assert.equal(r.status, 0, r.stderr);
      const report = JSON.parse(r.stdout).remote;
      assert.ok(report.not_uploaded.length > 0, r.stderr);
      assert.equal(report.uploaded + report.not_uploaded.length, 10);
      assert.match(r.stderr, /not uploaded to s3:\/\/team-cache\/down\/.*`synthbuild push` uploads them later/);
      assert.equal(JSON.parse(r.stdout).failed, 0);
    } finally {
      server.setLatency(100);
      await down.remove();
    }
  });

  test("wrong credentials: the build stops before any request, exit 2, no secret printed", async () => {
    const p = await project();
    await writeFile(join(p.dir, "dataset.yaml"), online(`s3://${BUCKET}/creds`));
    server.reset();
    const secret = "wJalrXUtnFEMI-another-secret";
    const r = await runCli(["build"], p.dir, { ...envOnline(), AWS_ACCESS_KEY_ID: "AKIAWRONGKEY0001", AWS_SECRET_ACCESS_KEY: secret });
    assert.equal(r.status, 2, r.stderr);
    assert.equal(server.requests.length, 0);
    assert.ok(!r.stderr.includes(secret) && !r.stderr.includes("AKIAWRONGKEY0001"));
    assert.equal(await p.exists("dataset.lock"), false);
  });
});

async function readdirRecursive(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await readdirRecursive(p)));
    else out.push(p);
  }
  return out;
}
