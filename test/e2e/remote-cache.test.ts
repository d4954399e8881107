import assert from "node:assert/strict";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { BUCKET, S3_CREDENTIALS, TestS3 } from "../helpers/s3.js";

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
  assert.deepEqual(JSON.parse(pushed.stdout).transferred, 8);
  assert.match(pushed.stderr, /pushed 8 answers \([\d.]+ KiB\) in [\d.]+ s.* to s3:\/\/team-cache\/team0\/ at http:\/\/127\.0\.0\.1:\d+; 0 already there/);

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
