import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** Two steps with a dedupe between them: what a shard can finish alone and what waits on the others. */
const manifest = (remote?: string) => `version: 1
name: sharded
seed: 4
model: { provider: openai, name: test-model, base_url: "\${TEST_BASE_URL}", concurrency: 4 }
dimensions:
  topic: [t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11, t12, t13, t14, t15, t16, t17, t18, t19]
  tone: [dry, warm]
steps:
  - id: draft
    generate: { prompt: "A {{ tone }} paragraph about {{ topic }}" }
  - id: unique
    dedupe: { field: draft }
  - id: polish
    generate: { prompt: "Polish: {{ draft }}" }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ topic }}", completion: "{{ polish }}", split: { train: 0.8, validation: 0.2 } }
${remote ? `cache: { remote: ${JSON.stringify(remote)} }\n` : ""}`;

describe("build --shard i/n", () => {
  let server: TestServer;
  let shared: string;
  const projects: TempProject[] = [];
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" });
  const project = async (text: string) => {
    const p = await TempProject.create({ "dataset.yaml": text });
    projects.push(p);
    return p;
  };
  before(async () => {
    server = await startTestServer({ answerWords: 10 });
    shared = await mkdtemp(join(tmpdir(), "synthbuild-shared-"));
  });
  after(async () => {
    await server.close();
    await rm(shared, { recursive: true, force: true });
    for (const p of projects) await p.remove();
  });

  test("two shards on two runners fill the shared cache; the assembly makes no request and equals a single build", { timeout: 90_000 }, async () => {
    const single = await project(manifest());
    const whole = await runCli(["build", "--json"], single.dir, env());
    assert.equal(whole.status, 0, whole.stderr);
    const total = JSON.parse(whole.stdout).requests as number;
    assert.equal(total, 80, "40 drafts and 40 polishes: the test server's answers are all distinct");

    server.reset();
    const [a, b] = [await project(manifest(shared)), await project(manifest(shared))];
    // Two runners at once, as a CI matrix runs them.
    const [ra, rb] = await Promise.all([
      runCli(["build", "--shard", "1/2", "--json"], a.dir, env()),
      runCli(["build", "--shard", "2/2", "--json"], b.dir, env()),
    ]);
    for (const r of [ra, rb]) assert.equal(r.status, 0, r.stderr);
    const [ja, jb] = [JSON.parse(ra.stdout), JSON.parse(rb.stdout)];
    assert.equal(ja.shard, "1/2");
    assert.ok(ja.requests > 10 && jb.requests > 10, `both shards worked: ${ja.requests} and ${jb.requests}`);
    assert.equal(ja.requests + jb.requests, total, "every request made once, by one shard");
    assert.equal(server.stats().requests, total);
    for (const p of [a, b]) {
      assert.equal(await p.exists("dataset.lock"), false, "a shard writes no lock");
      assert.equal(await p.exists("dist/out.train.jsonl"), false, "a shard writes no dist/");
    }

    const c = await project(manifest(shared));
    const assembled = await runCli(["build", "--json"], c.dir, env());
    assert.equal(assembled.status, 0, assembled.stderr);
    assert.equal(JSON.parse(assembled.stdout).requests, 0, "the assembly requests nothing");
    assert.equal(server.stats().requests, total);
    assert.deepEqual(await c.snapshot(), await single.snapshot(), "dist/ byte-identical to a single build");
    assert.equal(await c.read("dataset.lock"), await single.read("dataset.lock"));
  });

  test("the human summary says what a shard did and what is left; bad --shard values are usage errors", async () => {
    const p = await project(manifest());
    const r = await runCli(["build", "--shard", "2/3"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /shard 2\/3: \d+ requests, 0 failed; \d+ samples left to the other shards/);
    assert.match(r.stderr, /no dist\/ or lock written/);
    for (const bad of ["0/2", "3/2", "1", "a/b"]) {
      const u = await runCli(["build", "--shard", bad], p.dir, env());
      assert.equal(u.status, 2, `${bad}: ${u.stderr}`);
      assert.match(u.stderr, /expected i\/n with 1 ≤ i ≤ n/);
    }
    // A shard of a dataset already built has nothing to do and writes nothing.
    assert.equal((await runCli(["build", "-q"], p.dir, env())).status, 0);
    const done = JSON.parse((await runCli(["build", "--shard", "1/2", "--json"], p.dir, env())).stdout);
    assert.equal(done.shard, "1/2");
    assert.equal(done.requests, 0);
    assert.deepEqual(done.outputs, []);
    const frozen = await runCli(["build", "--shard", "1/2", "--frozen"], p.dir, env());
    assert.equal(frozen.status, 2);
    assert.match(frozen.stderr, /--shard and --frozen do not go together/);
  });
});
