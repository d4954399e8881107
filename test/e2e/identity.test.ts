import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cliEnv, REPO, runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/**
 * A stale or foreign answer can never be used (issue 8, part 1), end to end through the CLI, the
 * real SDK and the test server: answers are tied to the endpoint that gave them, a shared cache
 * keeps the first answer, a tool upgrade is never "up to date", and `plan` sees every change.
 */

const KEY = "sk-test-identity";

const manifest = (
  o: { endpointId?: string; min?: number; seed?: number; genres?: string; temperature?: number; template?: string; combine?: string } = {},
) => `version: 1
name: identity
seed: ${o.seed ?? 1}
model:
  name: gpt-4o-mini
  base_url: \${TEST_BASE_URL:-}
${o.endpointId ? `  endpoint_id: ${o.endpointId}\n` : ""}  params: { temperature: ${o.temperature ?? 1}, max_tokens: 40 }
  concurrency: 4
  retries: 1
dimensions:
  genre: [${o.genres ?? "sf, romance, comedy"}]
${o.combine ?? ""}
steps:
  - id: outline
    generate:
      prompt: "${o.template ?? "{{ nonce }} Outline a {{ genre }} story."}"
  - id: long
    filter: { field: outline, min_chars: ${o.min ?? 10} }
output:
  path: dist/out.jsonl
  format: openai-chat
  prompt: "Genre: {{ genre }}"
  completion: "{{ outline }}"
`;

const json = (s: string) => JSON.parse(s);

describe("answers are tied to the endpoint that gave them", { concurrency: false }, () => {
  let a: TestServer;
  let b: TestServer;
  before(async () => {
    a = await startTestServer({});
    b = await startTestServer({});
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  test("another server, or no base URL (OpenAI), is not answered from the first server's cache", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest() });
    try {
      const env = (url: string) => ({ TEST_BASE_URL: url, OPENAI_API_KEY: KEY });
      const built = await runCli(["build", "--json"], p.dir, env(a.baseURL));
      assert.equal(built.status, 0, built.stderr);
      assert.equal(a.requests.length, 3);
      const header = json((await p.read("dataset.lock")).split("\n")[0]!);
      assert.equal(header.steps.outline.endpoint, a.baseURL, "the lock records which endpoint answered");

      const openai = await runCli(["plan", "--json", "--explain"], p.dir, { TEST_BASE_URL: "" });
      assert.equal(openai.status, 0, openai.stderr);
      assert.equal(json(openai.stdout).requests, 3, "with no base URL the answers must come from OpenAI, not the test server's cache");
      assert.match(json(openai.stdout).stale[0].reasons[0], /endpoint "http:\/\/127\.0\.0\.1:\d+\/v1" → "https:\/\/api\.openai\.com\/v1"/);
      const noKey = await runCli(["build"], p.dir, { TEST_BASE_URL: "" });
      assert.equal(noKey.status, 2, "a build for OpenAI without a key stops before shipping anything");
      assert.match(noKey.stderr, /OPENAI_API_KEY/);

      const other = await runCli(["build", "--json"], p.dir, env(b.baseURL));
      assert.equal(other.status, 0, other.stderr);
      assert.equal(json(other.stdout).requests, 3);
      assert.equal(b.requests.length, 3, "a second server on the LAN answers for itself");
      assert.equal(a.requests.length, 3);
    } finally {
      await p.remove();
    }
  });

  test("endpoints declared equivalent with endpoint_id share answers", async () => {
    a.reset();
    b.reset();
    const p = await TempProject.create({ "dataset.yaml": manifest({ endpointId: "our-gateway" }) });
    try {
      assert.equal((await runCli(["build"], p.dir, { TEST_BASE_URL: a.baseURL, OPENAI_API_KEY: KEY })).status, 0);
      const r = await runCli(["build", "--json"], p.dir, { TEST_BASE_URL: b.baseURL, OPENAI_API_KEY: KEY });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(json(r.stdout).requests, 0);
      assert.equal(b.requests.length, 0);
      assert.equal(json((await p.read("dataset.lock")).split("\n")[0]!).steps.outline.endpoint, "our-gateway");
    } finally {
      await p.remove();
    }
  });
});

describe("a shared cache keeps the first answer", () => {
  test("two checkouts building the same new keys at once name the same answers; both pass --frozen", { timeout: 60_000 }, async () => {
    // Every request answered anew, as at temperature 1: the race is real.
    const server = await startTestServer({ varyAnswers: true, latencyMs: 2000 });
    const shared = await TempProject.create({});
    // All 8 requests of each build in flight at once, for 2 s: the two builds overlap however
    // slowly a busy machine starts them.
    const wide = manifest({ genres: "a, b, c, d, e, f, g, h" }).replace("concurrency: 4", "concurrency: 8");
    const one = await TempProject.create({ "dataset.yaml": wide });
    const two = await TempProject.create({ "dataset.yaml": wide });
    try {
      const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY, SYNTHBUILD_CACHE_DIR: join(shared.dir, "cache") };
      const [r1, r2] = await Promise.all([runCli(["build", "--json"], one.dir, env), runCli(["build", "--json"], two.dir, env)]);
      assert.equal(r1.status, 0, r1.stderr);
      assert.equal(r2.status, 0, r2.stderr);
      assert.ok(server.requests.length > 8, `the two builds raced for at least one key (${server.requests.length} requests for 8 keys)`);
      assert.equal(await one.read("dataset.lock"), await two.read("dataset.lock"), "both locks name the same answers");
      assert.deepEqual(await one.snapshot(), await two.snapshot());
      for (const p of [one, two]) {
        const v = await runCli(["verify"], p.dir, env);
        assert.equal(v.status, 0, v.stderr);
        const f = await runCli(["build", "--frozen"], p.dir, env);
        assert.equal(f.status, 0, f.stderr);
      }
    } finally {
      await server.close();
      for (const p of [shared, one, two]) await p.remove();
    }
  });
});

describe("plan sees every change, and says which", { concurrency: false }, () => {
  let server: TestServer;
  let p: TempProject;
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY });
  const plan = async () => {
    const r = await runCli(["plan", "--json", "--explain"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    return json(r.stdout);
  };
  const build = async () => {
    const r = await runCli(["build", "--json"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    return json(r.stdout);
  };
  before(async () => {
    server = await startTestServer({});
    p = await TempProject.create({ "dataset.yaml": manifest({ combine: "combine: { mode: sample, n: 2 }" }) });
    await build();
  });
  after(async () => {
    await server.close();
    await p.remove();
  });

  test("a filter's option: no request, but the filter reruns and says why", async () => {
    await p.write({ "dataset.yaml": manifest({ min: 20, combine: "combine: { mode: sample, n: 2 }" }) });
    const r = await plan();
    assert.equal(r.requests, 0);
    assert.equal(r.steps.find((s: { id: string }) => s.id === "long").to_run, 2);
    assert.equal(r.changed.length, 2);
    assert.deepEqual(r.changed[0].reasons, ["step 'long' changed: min_chars 10 → 20"]);
    await build();
    assert.equal((await plan()).changed.length, 0);
  });

  test("params, template and model: each named", async () => {
    const cases: [Parameters<typeof manifest>[0], RegExp][] = [
      [{ temperature: 0.5 }, /^step 'outline' changed: params\.temperature 1 → 0\.5$/],
      [{ template: "{{ nonce }} Outline a {{ genre }} tale." }, /^step 'outline' changed: template$/],
    ];
    for (const [o, why] of cases) {
      await p.write({ "dataset.yaml": manifest({ min: 20, combine: "combine: { mode: sample, n: 2 }", ...o }) });
      const r = await plan();
      assert.equal(r.requests, 2);
      for (const s of r.stale) assert.match(s.reasons[0], why);
    }
    await p.write({ "dataset.yaml": manifest({ min: 20, combine: "combine: { mode: sample, n: 2 }" }).replace("gpt-4o-mini", "gpt-4o") });
    assert.match((await plan()).stale[0].reasons[0], /model "gpt-4o-mini" → "gpt-4o"/);
  });

  test("the seed, combine.n raised, a value removed", async () => {
    await p.write({ "dataset.yaml": manifest({ min: 20, seed: 2, combine: "combine: { mode: sample, n: 2 }" }) });
    const seeded = await plan();
    assert.ok(seeded.stale.length > 0);
    for (const s of seeded.stale) assert.match(s.reasons[0], /seed changed: 1 → 2/);

    await p.write({ "dataset.yaml": manifest({ min: 20, combine: "combine: { mode: sample, n: 3 }" }) });
    const raised = await plan();
    assert.equal(raised.stale.length, 1);
    assert.match(raised.stale[0].reasons[0], /combine\.n raised: 2 → 3/);

    const lock = await p.read("dataset.lock");
    const genres = lock
      .split("\n")
      .slice(2)
      .filter(Boolean)
      .map((l) => json(l).values.genre as string);
    const keep = ["sf", "romance", "comedy"].filter((g) => g !== genres[0]);
    await p.write({ "dataset.yaml": manifest({ min: 20, genres: keep.join(", "), combine: "combine: { mode: product }" }) });
    const removed = await plan();
    assert.deepEqual(
      removed.removed.map((s: { reasons: string[] }) => s.reasons[0]),
      [`genre '${genres[0]}' was removed`],
    );
  });
});

describe("a tool upgrade is never 'up to date'", { concurrency: false }, () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer({});
  });
  after(() => server.close());

  /**
   * A copy of the built CLI with one version constant bumped, as the next release would have it.
   * Its code cache comes along, made for the old text of the same length: that it is not used (and
   * the new constant is) is checked here too.
   */
  async function upgradedBin(dir: string, constant: "KEY_VERSION" | "RENDER_VERSION", from: number): Promise<string> {
    const bundle = join(dir, "tool", "bundle");
    await cp(join(REPO, "lib", "bundle"), bundle, { recursive: true });
    let bumped = 0;
    for (const f of await readdir(bundle)) {
      if (!/\.c?js$/.test(f)) continue;
      const text = await readFile(join(bundle, f), "utf8");
      const next = text.replace(new RegExp(`(\\b${constant}\\d* = )${from};`), (_, lhs) => (bumped++, `${lhs}${from + 1};`));
      if (next !== text) await writeFile(join(bundle, f), next);
    }
    assert.equal(bumped, 1, `${constant} found once in the bundle`);
    const bin = join(dir, "tool", "synthbuild.cjs");
    const loader = JSON.stringify(join(REPO, "lib", "cli", "bundle-loader.cjs"));
    await writeFile(
      bin,
      `require(${loader}).loadBundle(require("node:path").join(__dirname, "bundle", "cli.cjs")).main(process.argv.slice(2)).then(process.exit);\n`,
    );
    return bin;
  }

  for (const [constant, from, requests] of [
    ["RENDER_VERSION", 1, 0],
    ["KEY_VERSION", 2, 3],
  ] as const) {
    test(`${constant} bumped: build and verify agree it is not up to date; ${requests ? "every key moves" : "no key moves"}`, async () => {
      const p = await TempProject.create({ "dataset.yaml": manifest() });
      const tool = await TempProject.create({});
      try {
        const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY };
        assert.equal((await runCli(["build"], p.dir, env)).status, 0);
        assert.equal((await runCli(["build"], p.dir, env)).status, 0, "a no-op with the stamp in place");
        const bin = await upgradedBin(tool.dir, constant, from);
        // Asynchronous: this process serves the endpoint.
        const run = (...args: string[]) =>
          new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
            const child = spawn(process.execPath, [bin, ...args], { cwd: p.dir, env: cliEnv(env) });
            let stdout = "";
            let stderr = "";
            child.stdout.on("data", (d) => (stdout += d));
            child.stderr.on("data", (d) => (stderr += d));
            child.on("close", (status) => resolve({ status, stdout, stderr }));
          });
        const before = await run("verify");
        assert.equal(before.status, 1, "verify of the old lock by the new tool must disagree");
        server.reset();
        const r = await run("build", "--json", "--verbose");
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stderr, /building: the lock was built by a synthbuild whose cache keys or rendering differ/);
        assert.equal(JSON.parse(r.stdout).requests, requests);
        assert.equal(server.requests.length, requests);
        assert.equal((await run("verify")).status, 0);
        assert.equal(JSON.parse((await run("build", "--json")).stdout).requests, 0);
      } finally {
        await p.remove();
        await tool.remove();
      }
    });
  }
});
