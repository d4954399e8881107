import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli, runCliSync } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** gc never deletes what a build, a release, or another project needs (issues 8 and 10). */

const echo = (values: string, name = "gc") => `version: 1
name: ${name}
model: { provider: echo, name: m }
dimensions:
  v: [${values}]
steps:
  - id: s
    generate: { prompt: "{{ v }}" }
output: { path: dist/x.jsonl, prompt: "{{ v }}", completion: "{{ s }}" }
`;

/** A project answered by the slow test server (its URL from TEST_BASE_URL), two requests at a time. */
const served = (name: string, values: string) => `version: 1
name: ${name}
model: { name: m, base_url: "\${TEST_BASE_URL}", concurrency: 2 }
dimensions:
  v: [${values}]
steps:
  - id: s
    generate: { prompt: "{{ v }}" }
output: { path: dist/x.jsonl, prompt: "{{ v }}", completion: "{{ s }}" }
`;

const json = (s: string) => JSON.parse(s);
const git = (cwd: string, ...args: string[]) =>
  execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: { ...process.env, GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" },
  });

describe("gc beside a build", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({ latencyMs: 300 });
  });
  after(() => server.close());

  test("gc during a build waits for it, and removes nothing the build's lock names", { timeout: 30_000 }, async () => {
    const p = await TempProject.create({ "dataset.yaml": served("gcb", "a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p, q, r, s, t, u, w, x, y, z") });
    try {
      const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-gc" };
      const building = runCli(["build"], p.dir, env);
      while (server.stats().answered < 2) await new Promise((r) => setTimeout(r, 20));
      const g = await runCli(["gc", "--json"], p.dir, env);
      const b = await building;
      assert.equal(b.status, 0, b.stderr);
      assert.equal(g.status, 0, g.stderr);
      assert.match(g.stderr, /waiting for 1 build using this cache to finish/);
      assert.equal(json(g.stdout).removed, 0);
      const v = await runCli(["verify"], p.dir, env);
      assert.equal(v.status, 0, v.stderr);
      server.reset();
      const again = await runCli(["build", "--json"], p.dir, env);
      assert.equal(json(again.stdout).requests, 0);
      assert.equal(server.requests.length, 0);
    } finally {
      await p.remove();
    }
  });

  test("gc waiting for a build reads the lock that build wrote, not the one before: a reroll's new answers are kept", { timeout: 60_000 }, async () => {
    const p = await TempProject.create({ "dataset.yaml": served("gcr", "a, b, c, d, e, f, g, h") });
    try {
      const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-gc" };
      assert.equal((await runCli(["build"], p.dir, env)).status, 0);
      const ids = [...(await p.read("dataset.lock")).matchAll(/"id":"([0-9a-f]{16})"/g)].map((x) => x[1]!);
      server.reset();
      // The reroll's build draws new answers (new keys) and then writes the lock naming them:
      // the manifest is unchanged, so only that lock tells gc they are live.
      const rerolling = runCli(["reroll", ...ids], p.dir, env);
      while (server.stats().answered < 1) await new Promise((r) => setTimeout(r, 20));
      const g = await runCli(["gc", "--json"], p.dir, env);
      assert.equal((await rerolling).status, 0);
      assert.equal(g.status, 0, g.stderr);
      assert.match(g.stderr, /waiting for 1 build using this cache to finish/);
      const frozen = await runCli(["build", "--frozen"], p.dir, env);
      assert.equal(frozen.status, 0, `gc removed answers the reroll's lock names: ${frozen.stderr}`);
    } finally {
      await p.remove();
    }
  });
});

test("gc keeps every answer a git branch or tag's lock names; a tagged release rebuilds --frozen", async () => {
  const p = await TempProject.create({ "dataset.yaml": echo("a, b, c"), ".gitignore": "cache/\ndist/\n" });
  try {
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    git(p.dir, "init", "-q", "-b", "main");
    git(p.dir, "add", ".");
    git(p.dir, "commit", "-qm", "v1");
    git(p.dir, "tag", "v1");
    await p.write({ "dataset.yaml": echo("a, b, z") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    git(p.dir, "commit", "-qam", "v2");

    const kept = runCliSync(["gc", "--json"], p.dir);
    assert.equal(kept.status, 0, kept.stderr);
    assert.equal(json(kept.stdout).removed, 0, "the v1 tag's lock still names c's answer");
    assert.ok(json(kept.stdout).sources.refs >= 2);

    git(p.dir, "checkout", "-q", "v1");
    const frozen = runCliSync(["build", "--frozen"], p.dir);
    assert.equal(frozen.status, 0, frozen.stderr);
    git(p.dir, "checkout", "-q", "main");
    assert.equal(runCliSync(["build"], p.dir).status, 0);

    git(p.dir, "tag", "-d", "v1");
    // The v1 commit is still on main's history but no ref's lock names it: its answer goes.
    const gone = runCliSync(["gc", "--json"], p.dir);
    assert.equal(json(gone.stdout).removed, 1);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
  } finally {
    await p.remove();
  }
});

test("gc with a lock that does not match the manifest keeps everything the manifest reaches", async () => {
  const p = await TempProject.create({ "dataset.yaml": echo("a, b, c") });
  try {
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    // As after a merge resolved with `git checkout --theirs dataset.lock`, or a lock cut short.
    const lock = await p.read("dataset.lock");
    await p.write({ "dataset.lock": `${lock.split("\n")[0]}\n` });
    const g = runCliSync(["gc", "--json"], p.dir);
    assert.equal(g.status, 0, g.stderr);
    assert.equal(json(g.stdout).removed, 0);
    assert.match(g.stderr, /does not match the manifest/);
    const b = runCliSync(["build", "--json"], p.dir);
    assert.equal(json(b.stdout).requests, 0, "no answer the merged manifest needs was lost");
  } finally {
    await p.remove();
  }
});

test("in a cache shared by two projects, gc of one removes only its own entries", async () => {
  const shared = await TempProject.create({});
  const a = await TempProject.create({ "dataset.yaml": echo("a1, a2", "alpha") });
  const b = await TempProject.create({ "dataset.yaml": echo("b1, b2", "beta") });
  try {
    const cache = ["--cache-dir", join(shared.dir, "cache")];
    for (const p of [a, b]) assert.equal(runCliSync([...cache, "build"], p.dir).status, 0);
    await a.write({ "dataset.yaml": echo("a1, a3", "alpha") });
    await b.write({ "dataset.yaml": echo("b1, b3", "beta") });
    for (const p of [a, b]) assert.equal(runCliSync([...cache, "build"], p.dir).status, 0);
    assert.equal((await shared.cacheKeys()).length, 6);

    const g = runCliSync([...cache, "gc", "--json"], a.dir);
    assert.equal(g.status, 0, g.stderr);
    assert.equal(json(g.stdout).removed, 1, "alpha's a2 answer only; beta's b2 is beta's to remove");
    assert.equal(json(g.stdout).sources.otherProjects, 1);
    for (const p of [a, b]) assert.equal(runCliSync([...cache, "verify"], p.dir).status, 0);
    assert.equal(json(runCliSync([...cache, "gc", "--json"], b.dir).stdout).removed, 1);
    assert.equal((await shared.cacheKeys()).length, 4);
  } finally {
    for (const p of [shared, a, b]) await p.remove();
  }
});
