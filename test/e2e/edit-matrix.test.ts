import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { removeAnswers } from "../helpers/cache-files.js";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/**
 * The invariants of DESIGN.md, end to end: the real binary, the real openai SDK, over HTTP to
 * the test server, counting the requests it receives after each edit.
 */

const KEY = "sk-test-SECRET-do-not-leak-4242";

const manifest = (o: { genres?: string; places?: string; expand?: string; completion?: string; concurrency?: number; combine?: string } = {}) => `version: 1
name: matrix
seed: 1
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { temperature: 1, max_tokens: 200 }
  concurrency: ${o.concurrency ?? 4}
  retries: 2
dimensions:
  genre: [${o.genres ?? "sf, romance, comedy"}]
  place: [${o.places ?? "Paris, Kyoto"}]
${o.combine ?? ""}
steps:
  - id: outline
    generate:
      prompt: "{{ nonce }} Outline a {{ genre }} story in {{ place }}."
  - id: expanded
    generate:
      prompt: "${o.expand ?? "Expand: {{ outline }}"}"
output:
  path: dist/out.jsonl
  format: openai-chat
  prompt: "Genre: {{ genre }}\\nLocation: {{ place }}"
  completion: "${o.completion ?? "{{ expanded }}"}"
`;

describe("edit matrix", { concurrency: false }, () => {
  let server: TestServer;
  let p: TempProject;
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY });
  const build = async (...args: string[]) => {
    server.reset();
    const r = await runCli(["build", "--json", ...args], p.dir, env());
    return { ...r, json: r.stdout ? JSON.parse(r.stdout) : undefined, requests: server.requests.map((q) => q.body.messages.at(-1).content as string) };
  };

  before(async () => {
    server = await startTestServer({ apiKey: KEY });
    p = await TempProject.create({ "dataset.yaml": manifest() });
  });
  after(async () => {
    await server.close();
    await p.remove();
  });

  let dist: Record<string, string>;
  let lock: string;

  test("cold build requests every sample's every step", async () => {
    const r = await build();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 12);
    assert.deepEqual(r.json.outputs, [{ path: "dist/out.jsonl", rows: 6 }]);
    assert.equal(r.json.requests, 12);
    dist = await p.snapshot();
    lock = await p.read("dataset.lock");
    const rows = dist["dist/out.jsonl"]!.trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(rows[0].messages[1].role, "assistant");
    assert.match(rows[0].messages[1].content, /^TEST ANSWER/);
  });

  test("no-op rebuild: zero requests, dist/ and lock byte-identical", async () => {
    const r = await build();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 0);
    assert.equal(r.json.cached, 12);
    assert.deepEqual(await p.snapshot(), dist);
    assert.equal(await p.read("dataset.lock"), lock);
  });

  test("one value changed: exactly the samples carrying it, and their downstream step", async () => {
    await p.write({ "dataset.yaml": manifest({ places: "Paris, Lyon" }) });
    const plan = await runCli(["plan", "--json", "--explain"], p.dir, env());
    assert.equal(JSON.parse(plan.stdout).requests, 6);
    assert.ok(
      JSON.parse(plan.stdout).stale.every((s: { reasons: string[] }) => /place changed: 'Kyoto' → 'Lyon'/.test(s.reasons[0]!)),
      plan.stdout,
    );
    const human = await runCli(["plan", "--explain"], p.dir, env());
    assert.match(human.stderr, /3 samples at outline: place changed: 'Kyoto' → 'Lyon'/);
    assert.equal(human.stdout, "", "human output goes to stderr");
    const r = await build();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 6);
    const outlines = r.requests.filter((q) => !q.startsWith("Expand") && q.includes("Outline a"));
    assert.equal(outlines.length, 3);
    assert.ok(outlines.every((q) => q.includes("Lyon")));
    assert.equal(r.requests.filter((q) => q.startsWith("Expand:")).length, 3);
  });

  test("a template changed: that step and its dependents only", async () => {
    await p.write({ "dataset.yaml": manifest({ places: "Paris, Lyon", expand: "Expand fully: {{ outline }}" }) });
    const r = await build();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 6);
    assert.ok(r.requests.every((q) => q.startsWith("Expand fully:")));
  });

  test("only output changed: zero requests, new rows", async () => {
    await p.write({ "dataset.yaml": manifest({ places: "Paris, Lyon", expand: "Expand fully: {{ outline }}", completion: "STORY: {{ expanded }}" }) });
    const r = await build();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 0);
    assert.match(await p.read("dist/out.jsonl"), /"STORY: TEST ANSWER/);
  });

  test("concurrency changed: zero requests", async () => {
    await p.write({
      "dataset.yaml": manifest({ places: "Paris, Lyon", expand: "Expand fully: {{ outline }}", completion: "STORY: {{ expanded }}", concurrency: 9 }),
    });
    const r = await build("--concurrency", "2");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 0);
  });

  test("a value added: only the new samples", async () => {
    await p.write({
      "dataset.yaml": manifest({
        genres: "sf, romance, comedy, horror",
        places: "Paris, Lyon",
        expand: "Expand fully: {{ outline }}",
        completion: "STORY: {{ expanded }}",
      }),
    });
    const r = await build();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 4);
    assert.ok(r.requests.filter((q) => !q.startsWith("Expand") && q.includes("Outline a")).every((q) => q.includes("horror")));
    assert.equal(r.json.outputs[0].rows, 8);
  });

  test("a value removed: zero requests, its rows gone, gc reclaims its answers", async () => {
    await p.write({
      "dataset.yaml": manifest({
        genres: "romance, comedy, horror",
        places: "Paris, Lyon",
        expand: "Expand fully: {{ outline }}",
        completion: "STORY: {{ expanded }}",
      }),
    });
    const r = await build();
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests.length, 0);
    assert.equal(r.json.outputs[0].rows, 6);
    assert.doesNotMatch(await p.read("dist/out.jsonl"), /Genre: sf/);
    const before = (await p.cacheKeys()).length;
    const g = await runCli(["gc", "--json"], p.dir, env());
    assert.equal(g.status, 0, g.stderr);
    const after = await p.cacheKeys();
    // Live: 6 samples × 2 steps. Everything else (old Kyoto/sf answers, the first expansions) goes.
    assert.equal(after.length, 12);
    assert.equal(JSON.parse(g.stdout).removed, before - 12);
    const again = await build();
    assert.equal(again.requests.length, 0, "gc removed a live entry");
  });

  test("--frozen passes on a complete cache and fails, naming the sample, once an entry is gone", async () => {
    const ok = await build("--frozen");
    assert.equal(ok.status, 0, ok.stderr);
    const lockLine = (await p.read("dataset.lock")).split("\n").find((l) => l.includes('"romance"') && l.includes('"Paris"'))!;
    const sample = JSON.parse(lockLine);
    await removeAnswers(join(p.dir, "cache"), [sample.steps.expanded.key]);
    const lockBefore = await p.read("dataset.lock");
    const r = await build("--frozen");
    assert.equal(r.status, 1);
    assert.equal(r.requests.length, 0);
    assert.match(r.stderr, new RegExp(`${sample.id} \\(step expanded\\)`));
    assert.equal(await p.read("dataset.lock"), lockBefore);
    const v = await runCli(["verify"], p.dir, env());
    assert.equal(v.status, 1);
    assert.match(v.stderr, /not in the cache/);
    // A normal build brings back exactly that one answer.
    const fix = await build();
    assert.equal(fix.requests.length, 1);
  });

  test("--frozen fails when the manifest changed but the lock was not rebuilt", async () => {
    await p.write({
      "dataset.yaml": manifest({
        genres: "romance, comedy, horror",
        places: "Paris, Lyon",
        expand: "Expand fully: {{ outline }}",
        completion: "CHANGED {{ expanded }}",
      }),
    });
    const r = await build("--frozen");
    assert.equal(r.status, 1);
    assert.match(r.stderr, /out of date/);
  });

  test("verify catches an edited dist/ file", async () => {
    await build();
    const v0 = await runCli(["verify"], p.dir, env());
    assert.equal(v0.status, 0, v0.stderr);
    await p.write({ "dist/out.jsonl": (await p.read("dist/out.jsonl")).replace("Paris", "Pariss") });
    const v = await runCli(["verify"], p.dir, env());
    assert.equal(v.status, 1);
    assert.match(v.stderr, /dist\/out\.jsonl differs from the lock/);
  });

  test("the API key appears in no cache entry, lock, dist file or output", async () => {
    const everything = { ...(await p.snapshot("cache")), ...(await p.snapshot("dist")), lock: await p.read("dataset.lock") };
    assert.ok(Object.keys(everything).length > 10);
    for (const [path, text] of Object.entries(everything)) assert.ok(!text.includes(KEY), `${path} contains the API key`);
    const r = await build();
    assert.ok(!r.stdout.includes(KEY) && !r.stderr.includes(KEY));
    // The key did reach the server, so the test would see it if it were leaked.
    await p.write({ "dataset.yaml": manifest({ genres: "western", places: "Paris", expand: "E {{ outline }}" }) });
    const r2 = await build();
    assert.equal(r2.status, 0, r2.stderr);
    assert.equal(server.requests[0]!.headers.authorization, `Bearer ${KEY}`);
  });
});

describe("sample mode", () => {
  test("raising n keeps the samples already built: only new ones are requested", async () => {
    const server = await startTestServer();
    const p = await TempProject.create({
      "dataset.yaml": manifest({ genres: "a, b, c, d", places: "p, q, r, s", combine: "combine: { mode: sample, n: 4 }" }),
    });
    try {
      const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" };
      const r1 = await runCli(["build", "--json"], p.dir, env);
      assert.equal(r1.status, 0, r1.stderr);
      assert.equal(server.requests.length, 8);
      const ids1 = (await p.read("dataset.lock"))
        .split("\n")
        .slice(2)
        .filter(Boolean)
        .map((l) => JSON.parse(l).id);
      server.reset();
      await p.write({ "dataset.yaml": manifest({ genres: "a, b, c, d", places: "p, q, r, s", combine: "combine: { mode: sample, n: 7 }" }) });
      const r2 = await runCli(["build", "--json"], p.dir, env);
      assert.equal(r2.status, 0, r2.stderr);
      assert.equal(server.requests.length, 6);
      const lock2 = await p.read("dataset.lock");
      for (const id of ids1) assert.ok(lock2.includes(`"id":"${id}"`), `sample ${id} was dropped when n grew`);
    } finally {
      await server.close();
      await p.remove();
    }
  });
});
