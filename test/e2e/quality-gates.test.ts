import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { REPO } from "../helpers/cli.js";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** An LLM judge in a few lines: a rubric with a json_schema, then a filter on its score. */
function manifest(where: string, extra = ""): string {
  return `version: 1
name: gates
seed: 3
model: { provider: openai, name: test-model, base_url: "\${TEST_BASE_URL}", concurrency: 4 }
dimensions:
  topic: [t00, t01, t02, t03, t04, t05, t06, t07, t08, t09, t10, t11, t12, t13, t14, t15]
steps:
  - id: story
    generate: { prompt: "Write about {{ topic }}" }
  - id: judge
    generate:
      prompt: "Score this story from 1 to 5: {{ story }}"
      json_schema: { type: object, properties: { verdict: { type: string }, score: { type: integer, enum: [1, 2, 3, 4, 5] } }, required: [verdict, score] }
  - id: gate
    filter: { where: ${JSON.stringify(where)} }
${extra}output: { path: dist/out.jsonl, format: jsonl, record: { topic: "{{ topic }}", judge: "{{ judge }}" } }
`;
}

describe("quality gates: filter where", () => {
  let server: TestServer;
  const projects: TempProject[] = [];
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" });
  before(async () => {
    server = await startTestServer({ answerWords: 12 });
  });
  after(async () => {
    await server.close();
    for (const p of projects) await p.remove();
  });

  test("a judge's score gates the rows; the summary counts the drops by step with a reason", { timeout: 60_000 }, async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest("judge.score >= 3") });
    projects.push(p);
    const r = await runCli(["build", "--json"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    const rows = (await p.read("dist/out.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { topic: string; judge: string });
    const scores = rows.map((row) => (JSON.parse(row.judge) as { score: number }).score);
    assert.ok(
      scores.every((s) => s >= 3),
      `every kept row scores 3 or more: ${scores}`,
    );
    // The test proves something only if the judge's scores straddle the gate.
    assert.ok(json.dropped > 0 && rows.length > 0, `kept ${rows.length}, dropped ${json.dropped}`);
    assert.equal(rows.length + json.dropped, 16);
    assert.equal(json.drops.length, 1);
    assert.equal(json.drops[0].step, "gate");
    assert.equal(json.drops[0].count, json.dropped);
    assert.match(json.drops[0].example, /^where judge\.score >= 3 is false \(judge\.score = [12]\)$/);

    // The human summary says the same; -q keeps it quiet while rows remain.
    const again = await runCli(["build"], p.dir, env());
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, new RegExp(`dropped by:\\n  gate  ${json.dropped}  e\\.g\\. [0-9a-f]+: where judge\\.score >= 3 is false`));
    // Same from a no-op decided by the stamp as by a full build.
    assert.deepEqual(JSON.parse((await runCli(["build", "--json"], p.dir, env())).stdout).drops, json.drops);

    // Editing the condition re-decides the filter with no new request.
    const before = server.stats().requests;
    await p.write({ "dataset.yaml": manifest("judge.score >= 2 and len(story) > 0") });
    const edited = await runCli(["build", "--json"], p.dir, env());
    assert.equal(edited.status, 0, edited.stderr);
    assert.equal(server.stats().requests, before, "a filter's condition costs no request");
    assert.ok(JSON.parse(edited.stdout).dropped < json.dropped, "a lower bar drops fewer");
  });

  test("a build where every sample was dropped says so, even with -q", { timeout: 60_000 }, async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest("judge.score > 5") });
    projects.push(p);
    const r = await runCli(["build", "-q"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /every sample was dropped: the outputs have no rows \(synthbuild show [0-9a-f]+ shows why\)/);
    assert.match(r.stderr, /gate {2}16 {2}e\.g\./);
  });

  test("an answer missing the field drops its sample, naming what was missing", { timeout: 60_000 }, async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest("judge.rating >= 3") });
    projects.push(p);
    const r = await runCli(["build", "--json"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    assert.match(JSON.parse(r.stdout).drops[0].example, /^where judge\.rating >= 3: judge\.rating is missing$/);
  });

  for (const [where, message] of [
    ["judge.score >=", /steps\[2\]\.filter\.where: cannot parse at character 15: unexpected end of the expression/s],
    ["verdict == 1", /filter.where: unknown name 'verdict'/],
    ["later == 1", /filter.where: 'later' is a later step/],
    ["strlen(story) > 3", /unknown function strlen\(\); the functions are abs, ceil, contains/],
    ['story ~= "[a"', /"\[a" is not a regular expression/],
    ["score of judge > 1", /`x of y` is not supported; read a field as y\.x/],
  ] as const)
    test(`a bad condition is refused before any request: ${where}`, async () => {
      const p = await TempProject.create({ "dataset.yaml": manifest(where, "  - id: later\n    generate: { prompt: x }\n") });
      projects.push(p);
      const before = server.stats().requests;
      const r = await runCli(["build"], p.dir, env());
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
      assert.equal(server.stats().requests, before);
      assert.equal(await p.exists("dataset.lock"), false);
    });

  test("a filter needs field: or where:, and text tests need field:", async () => {
    for (const [filter, message] of [
      ["{ min_chars: 3 }", /a filter needs field: \(with min_chars, must_match\.\.\.\) or where:/],
      ['{ where: "len(story) > 1", min_chars: 3 }', /min_chars test a field: name it with field:/],
    ] as const) {
      const p = await TempProject.create({
        "dataset.yaml": `version: 1\nname: f\nmodel: { name: m }\ndimensions: { a: [x] }\nsteps:\n  - id: story\n    generate: { prompt: "{{ a }}" }\n  - id: f\n    filter: ${filter}\noutput: { path: dist/x.jsonl, format: jsonl, record: { s: "{{ story }}" } }\n`,
      });
      projects.push(p);
      const r = await runCli(["build", "--offline"], p.dir, {});
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, message);
    }
  });
});

describe("warnings for wasted work", () => {
  const projects: TempProject[] = [];
  after(async () => {
    for (const p of projects) await p.remove();
  });
  const plan = async (manifest: string) => {
    const p = await TempProject.create({ "dataset.yaml": manifest });
    projects.push(p);
    const r = await runCli(["plan"], p.dir, {});
    assert.equal(r.status, 0, r.stderr);
    return r.stderr;
  };
  const head = "version: 1\nname: w\nmodel: { provider: echo }\n";

  test("a generate step that no output and no later step reads", async () => {
    const stderr = await plan(
      `${head}dimensions: { genre: [a, b] }\nsteps:\n  - id: outline\n    generate: { prompt: "Outline {{ genre }}" }\n  - id: title\n    generate: { prompt: "Title for {{ genre }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ genre }}", completion: "{{ outline }}" }\n`,
    );
    assert.match(stderr, /step 'title' is read by no output and no later step: its requests are paid for nothing/);
    assert.doesNotMatch(stderr, /step 'outline'/);
  });

  test("a dimension no prompt reads, said once; a parent of a conditional dimension or a zipped label is not", async () => {
    const stderr = await plan(
      `${head}dimensions:\n  genre: [a, b]\n  place: [x, y, z]\n  sub: { by: genre, values: { a: [a1], b: [b1] } }\nsteps:\n  - id: s\n    generate: { prompt: "{{ nonce }} {{ sub }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ place }}", completion: "{{ s }}" }\n`,
    );
    assert.match(
      stderr,
      /dimension 'place' \(3 values\) is read by no prompt: it multiplies the samples, not what is asked, and each copy pays for its own request/,
    );
    assert.doesNotMatch(stderr, /dimension 'genre'/);
    const zipped = await plan(
      `${head}dimensions:\n  q: [one, two]\n  label: [x, y]\ncombine: { mode: zip }\nsteps:\n  - id: s\n    generate: { prompt: "{{ q }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ label }}", completion: "{{ s }}" }\n`,
    );
    assert.doesNotMatch(zipped, /dimension/);
  });

  test("{genre} and %s left from another tool's templates", async () => {
    const stderr = await plan(
      `${head}dimensions: { genre: [a, b] }\nsteps:\n  - id: s\n    generate: { prompt: "Write a {genre} story. {{ genre }}" }\n  - id: t\n    generate: { prompt: "Expand: %s {{ s }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ genre }} {\\"json\\": 1}", completion: "{{ t }}" }\n`,
    );
    assert.match(stderr, /step 's' \(user message\) has \{genre\}, which renders as that text: synthbuild's templates read \{\{ genre \}\}/);
    assert.match(stderr, /step 't' \(user message\) has %s, which renders as that text/);
    assert.doesNotMatch(stderr, /output dist\/x\.jsonl/, "JSON in a template is not a placeholder");
  });

  test("the repo's example manifest warns of nothing", async () => {
    const r = await runCli(["plan"], REPO, {});
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /warning|read by no/);
  });
});
