import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/**
 * `target: { rows, max_candidates }` through the real binary against the test server, whose
 * answers begin "TEST ANSWER <8 hex digits>": a filter on the first digit drops a known share.
 */

const KEY = "sk-test-target-rows-0000";

const manifest = (o: { rows: number; max?: number; keep?: string; dedupe?: boolean; split?: boolean; extra?: string }) => `version: 1
name: target
seed: 3
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  concurrency: 4
  retries: 1
dimensions:
  genre: [sf, romance, comedy, horror, western]
  place: [Paris, Kyoto]
${o.extra ?? ""}
target: { rows: ${o.rows}${o.max === undefined ? "" : `, max_candidates: ${o.max}`} }
steps:
  - id: outline
    generate: { prompt: "{{ nonce }} Outline a {{ genre }} story in {{ place }}." }
  - id: good
    filter: { where: 'outline ~= "ANSWER [${o.keep ?? "0-7"}]"' }
${
  o.dedupe
    ? `  - id: digit
    map: { field: outline, replace: [{ pattern: "^TEST ANSWER (.).*$", with: "$1", flags: "s" }] }
  - id: one_per_digit
    dedupe: { field: digit }
`
    : ""
}output:
  path: dist/out.jsonl
  format: openai-chat
  prompt: "Genre: {{ genre }} in {{ place }}, take {{ index }}"
  completion: "{{ outline }}"
${o.split ? "  split: { train: 0.8, validation: 0.2 }\n" : ""}`;

describe("target.rows", { concurrency: false }, () => {
  let server: TestServer;
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY });
  const build = async (p: TempProject, ...args: string[]) => {
    server.reset();
    const r = await runCli(["build", "--json", ...args], p.dir, env());
    return { ...r, json: r.stdout ? JSON.parse(r.stdout) : undefined, requests: server.requests.length };
  };
  const rows = async (p: TempProject, path = "dist/out.jsonl") => (await p.read(path)).split("\n").filter(Boolean);

  before(async () => {
    server = await startTestServer({ apiKey: KEY });
  });
  after(async () => {
    await server.close();
  });

  test("exactly N rows are written, over waves; a rebuild makes no request and writes the same bytes", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ rows: 12 }) });
    const first = await build(p);
    assert.equal(first.status, 0, first.stderr);
    assert.equal((await rows(p)).length, 12);
    assert.equal(first.json.target.kept, 12);
    assert.equal(first.json.target.reached, true);
    // A filter that keeps half cannot give 12 rows from the first 12 candidates: more were tried.
    assert.ok(first.json.samples > 12, `only ${first.json.samples} candidates`);
    assert.equal(first.requests, first.json.samples);
    const lock = await p.read("dataset.lock");
    assert.match(lock.split("\n")[0]!, /"target":\{"max_candidates":48,"rows":12\}/);
    const dist = await p.snapshot();

    const again = await build(p);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.requests, 0);
    assert.equal(again.json.target.kept, 12);
    assert.deepEqual(await p.snapshot(), dist);
    assert.equal(await p.read("dataset.lock"), lock);
    // Without the stamp too: decide() itself holds the candidates the lock used.
    await p.write({ "dataset.yaml": `${manifest({ rows: 12 })}\n# an edit the stamp sees\n` });
    const decided = await build(p, "--verbose");
    assert.equal(decided.requests, 0);
    assert.match(decided.stderr, /up to date: every sample's recipe matches the lock/);
    assert.deepEqual(await p.snapshot(), dist);
    // The release gate and verify see the same candidates: from a fresh dist/, no request.
    await p.write({ "dist/out.jsonl": "" });
    const frozen = await build(p, "--frozen");
    assert.equal(frozen.status, 0, frozen.stderr);
    assert.equal(frozen.requests, 0);
    assert.deepEqual(await p.snapshot(), dist);
    const verified = await runCli(["verify"], p.dir, env());
    assert.equal(verified.status, 0, verified.stderr);
    const planned = await runCli(["plan", "--json"], p.dir, env());
    assert.equal(JSON.parse(planned.stdout).target.candidates, first.json.samples);
    await p.remove();
  });

  test("raising rows keeps every row byte for byte and adds; lowering keeps a prefix with no request", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ rows: 8 }) });
    assert.equal((await build(p)).status, 0);
    const small = await rows(p);
    await p.write({ "dataset.yaml": manifest({ rows: 20, max: 80 }) });
    const raised = await build(p);
    assert.equal(raised.status, 0, raised.stderr);
    const big = await rows(p);
    assert.equal(big.length, 20);
    for (const r of small) assert.ok(big.includes(r), `row lost on raising rows: ${r.slice(0, 80)}`);
    await p.write({ "dataset.yaml": manifest({ rows: 5, max: 80 }) });
    const lowered = await build(p);
    assert.equal(lowered.status, 0, lowered.stderr);
    assert.equal(lowered.requests, 0);
    const few = await rows(p);
    assert.equal(few.length, 5);
    for (const r of few) assert.ok(small.includes(r), "lowering rows kept a row the smaller target did not have");
    assert.match(await p.read("dataset.lock"), /"why":"beyond target.rows \(5\)"/);
    // ...and raising it again is answered from the answers the lock kept.
    await p.write({ "dataset.yaml": manifest({ rows: 20, max: 80 }) });
    const back = await build(p);
    assert.equal(back.requests, 0);
    assert.deepEqual(await rows(p), big);
    await p.remove();
  });

  test("after a filter is edited: looser keeps N rows with no request, tighter tops up again to N", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ rows: 10 }) });
    assert.equal((await build(p)).status, 0);
    await p.write({ "dataset.yaml": manifest({ rows: 10, keep: "0-9a-f" }) });
    const looser = await build(p);
    assert.equal(looser.status, 0, looser.stderr);
    assert.equal(looser.requests, 0);
    assert.equal((await rows(p)).length, 10);
    await p.write({ "dataset.yaml": manifest({ rows: 10, keep: "0-3" }) });
    const tighter = await build(p);
    assert.equal(tighter.status, 0, tighter.stderr);
    assert.ok(tighter.requests > 0);
    assert.equal((await rows(p)).length, 10);
    await p.remove();
  });

  test("dedupe compares each wave against every row kept before it", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ rows: 10, max: 100, keep: "0-9a-f", dedupe: true }) });
    const r = await build(p);
    assert.equal(r.status, 0, r.stderr);
    const out = await rows(p);
    assert.equal(out.length, 10);
    const digits = out.map((line) => /TEST ANSWER (.)/.exec(JSON.parse(line).messages.at(-1).content)![1]);
    assert.equal(new Set(digits).size, 10, `duplicate first digits across waves: ${digits.join("")}`);
    assert.ok(r.json.samples > 10);
    await p.remove();
  });

  test("splits divide the N rows", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ rows: 15, split: true }) });
    const r = await build(p);
    assert.equal(r.status, 0, r.stderr);
    const counts = r.json.outputs.map((o: { rows: number }) => o.rows);
    assert.equal(
      counts.reduce((a: number, b: number) => a + b, 0),
      15,
    );
    assert.equal(counts.length, 2);
    assert.match(await p.read("dist/README.md"), /15 rows \(target 15\) from \d+ candidates/);
    await p.remove();
  });

  test("max_candidates spent short of rows: what there is is written, said loudly, exit 1, also on the no-op rebuild", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ rows: 10, max: 20, keep: "0" }) });
    const r = await build(p);
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.json.samples, 20);
    assert.equal(r.requests, 20);
    const kept = r.json.target.kept as number;
    assert.ok(kept < 10);
    assert.equal((await rows(p).catch(() => [])).length, kept);
    assert.match(r.stderr, new RegExp(`target.rows 10 not reached: ${kept} rows from 20 candidates \\(max_candidates\\)`));
    const again = await build(p);
    assert.equal(again.status, 1);
    assert.equal(again.requests, 0);
    assert.match(again.stderr, /target.rows 10 not reached/);
    await p.remove();
  });

  test("--limit N with target: N requests, no wave beyond them, and exit 0: the rest are held back, not short", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ rows: 12 }) });
    const r = await build(p, "--limit", "3");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.requests, 3);
    assert.equal(r.json.samples, 12);
    assert.match(r.stderr, /target.rows 12 not reached: \d+ rows from 12 candidates \(samples not built yet\)/);
    await p.remove();
  });

  test("invalid settings exit 2 with their position and a hint", async () => {
    const cases: [ReturnType<typeof manifest>, RegExp][] = [
      [manifest({ rows: 0 }), /dataset\.yaml:\d+:\d+.*target\.rows must be at least 1/s],
      [manifest({ rows: 10, max: 5 }), /dataset\.yaml:\d+:\d+.*max_candidates \(5\) is below target\.rows \(10\)/s],
      [manifest({ rows: 10, extra: "combine: { repeat: 2 }" }), /dataset\.yaml:\d+:\d+.*combine\.repeat and target: both decide/s],
    ];
    for (const [text, want] of cases) {
      const p = await TempProject.create({ "dataset.yaml": text });
      const r = await runCli(["build"], p.dir, env());
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, want);
      assert.equal(await p.exists("dataset.lock"), false);
      await p.remove();
    }
  });
});
