import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/**
 * Issue #11, "Inputs", end to end through the real binary and the test server: rows dimensions
 * (CSV and JSONL tables, one value a row), the fields of structured answers, and jsonl records
 * that keep the JSON types of those fields.
 */

const KEY = "sk-test-rows-0000";

const model = `model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { temperature: 1, max_tokens: 2000 }
  retries: 0`;

/** RFC 4180 in earnest: a quoted comma, a doubled quote, a line break inside a field, CRLF. */
const SEEDS = [
  "id,question,level",
  '1,"Why, then, is the sky blue?",easy',
  '2,"What does ""entropy"" mean?",hard',
  '3,"Name two\nrivers",easy',
  "4,What is rain?,easy",
].join("\r\n");

const seedsManifest = (key: string) => `version: 1
name: rows
seed: 3
${model}
dimensions:
  seed: { rows: data/seeds.csv${key} }
  style: [terse, chatty]
steps:
  - id: answer
    generate: { prompt: "{{ nonce }} Answer {{ style }}ly: {{ seed.question }}" }
output:
  path: dist/out.jsonl
  format: jsonl
  record: { id: "{{ seed.id }}", level: "{{ seed.level }}", style: "{{ style }}", answer: "{{ answer }}" }
`;

interface Lock {
  ids: string[];
  byId: Map<string, Record<string, string>>;
}

function readLock(text: string): Lock {
  const samples = text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((o) => typeof o.id === "string" && o.values);
  return { ids: samples.map((s) => s.id).sort(), byId: new Map(samples.map((s) => [s.id, s.values])) };
}

const rowsOf = (text: string) =>
  text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));

describe("rows dimensions and structured answers", { concurrency: false }, () => {
  let server: TestServer;
  const projects: TempProject[] = [];
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY });
  const project = async (files: Record<string, string>) => {
    const p = await TempProject.create(files);
    projects.push(p);
    return p;
  };
  const build = async (p: TempProject) => {
    server.reset();
    const r = await runCli(["build", "--json"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    const prompts = server.requests.map((q) => q.body.messages.at(-1).content as string);
    return { json: JSON.parse(r.stdout), prompts, lock: readLock(await p.read("dataset.lock")) };
  };

  before(async () => {
    server = await startTestServer({ apiKey: KEY });
  });
  after(async () => {
    await server.close();
    for (const p of projects) await p.remove();
  });

  test("a CSV table: every row a value, its quoted fields reaching the prompt as written", async () => {
    const p = await project({ "dataset.yaml": seedsManifest(", key: id"), "data/seeds.csv": SEEDS });
    const b = await build(p);
    assert.equal(b.prompts.length, 8, "4 rows × 2 styles");
    for (const q of ["Why, then, is the sky blue?", 'What does "entropy" mean?', "Name two\nrivers", "What is rain?"])
      assert.equal(b.prompts.filter((m) => m.endsWith(`: ${q}`)).length, 2, `${JSON.stringify(q)} in two prompts`);
    const rows = rowsOf(await p.read("dist/out.jsonl"));
    assert.deepEqual([...new Set(rows.map((r) => r.id))].sort(), ["1", "2", "3", "4"]);
    // CSV is text: a column of digits stays a string, as the file has it.
    assert.ok(rows.every((r) => typeof r.id === "string"));
    // A key column names the lock's values.
    assert.deepEqual([...new Set([...b.lock.byId.values()].map((v) => v.seed))].sort(), ["1", "2", "3", "4"]);
  });

  test("with key: editing one row re-requests exactly its samples, under the same sample ids", async () => {
    const p = await project({ "dataset.yaml": seedsManifest(", key: id"), "data/seeds.csv": SEEDS });
    const first = await build(p);
    assert.equal((await build(p)).prompts.length, 0, "a rebuild makes no request");
    await p.write({ "data/seeds.csv": SEEDS.replace("What is rain?", "What is hail?") });
    const b = await build(p);
    assert.equal(b.prompts.length, 2, b.prompts.join("\n---\n"));
    assert.ok(b.prompts.every((m) => m.endsWith(": What is hail?")));
    assert.deepEqual(b.lock.ids, first.lock.ids, "the key keeps every sample id");
    const rows = rowsOf(await p.read("dist/out.jsonl"));
    assert.equal(rows.length, 8);
  });

  test("with key: a column only an output reads, edited, is written again (no request, but no stale row)", async () => {
    // No step reads the row at all: only the output does.
    const manifest = seedsManifest(", key: id").replace("{{ seed.question }}", "anything");
    const p = await project({ "dataset.yaml": manifest, "data/seeds.csv": SEEDS });
    await build(p);
    await p.write({ "data/seeds.csv": SEEDS.replace("4,What is rain?,easy", "4,What is rain?,medium") });
    const b = await build(p);
    assert.equal(b.prompts.length, 0, "no prompt reads level");
    const rows = rowsOf(await p.read("dist/out.jsonl"));
    assert.deepEqual(
      rows.filter((r) => r.id === "4").map((r) => r.level),
      ["medium", "medium"],
    );
    const plan = await runCli(["plan", "--json"], p.dir, env());
    assert.equal(JSON.parse(plan.stdout).requests, 0);
  });

  test("without key: a row's identity is its content, so the edited row's samples are new and the others stay", async () => {
    const p = await project({ "dataset.yaml": seedsManifest(""), "data/seeds.csv": SEEDS });
    const first = await build(p);
    const edited = SEEDS.replace('rivers",easy', 'rivers",hard');
    await p.write({ "data/seeds.csv": edited });
    const b = await build(p);
    // The level column is read by no prompt: the prompts are the same text, but under new sample
    // ids (so new nonces), and only the edited row's two samples are asked again.
    assert.equal(b.prompts.length, 2);
    assert.ok(b.prompts.every((m) => m.endsWith(": Name two\nrivers")));
    const gone = first.lock.ids.filter((id) => !b.lock.ids.includes(id));
    const added = b.lock.ids.filter((id) => !first.lock.ids.includes(id));
    assert.equal(gone.length, 2);
    assert.equal(added.length, 2);
    for (const id of added) assert.match(b.lock.byId.get(id)!.seed!, /"level":"hard"/);
    // Moving rows about changes nothing: a row is its content, not its line.
    const [header, ...rows] = edited.split("\r\n");
    await p.write({ "data/seeds.csv": [header, ...rows.reverse()].join("\n") });
    assert.equal((await build(p)).prompts.length, 0);
  });

  test("a table's path may come from the environment, as a values file's does", async () => {
    const p = await project({ "dataset.yaml": seedsManifest("").replace("data/seeds.csv", "'${SEEDS_CSV}'"), "data/other.csv": SEEDS });
    server.reset();
    const r = await runCli(["build", "--json"], p.dir, { ...env(), SEEDS_CSV: "data/other.csv" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(server.requests.length, 8);
  });

  test("with key, exclude: and by: name rows by their key", async () => {
    const p = await project({
      "dataset.yaml": `version: 1
name: keyed
model: { provider: echo, name: echo }
dimensions:
  seed: { rows: data/seeds.csv, key: id }
  style:
    by: seed
    values: { "1": [terse], "2": [long, short] }
  lang: [en, fr]
combine: { exclude: [{ seed: 2, lang: fr }] }
steps:
  - id: q
    generate: { prompt: "{{ seed.question }} {{ style }} {{ lang }}" }
output: { path: dist/out.jsonl, format: jsonl, record: { id: "{{ seed.id }}", style: "{{ style }}", lang: "{{ lang }}" } }
`,
      "data/seeds.csv": "id,question\n1,Q one\n2,Q two\n",
    });
    const r = await runCli(["build", "--offline"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const got = rowsOf(await p.read("dist/out.jsonl"))
      .map((x) => `${x.id}/${x.style}/${x.lang}`)
      .sort();
    assert.deepEqual(got, ["1/terse/en", "1/terse/fr", "2/long/en", "2/short/en"]);
  });

  test("a zipped table: columns that repeat values are rows of one dimension, zipped with a list as long", async () => {
    const p = await project({
      "dataset.yaml": `version: 1
name: table
${model}
dimensions:
  pair: { rows: data/pairs.csv }
  tone: [dry, warm, dry-ish]
combine: { mode: zip }
steps:
  - id: say
    generate: { prompt: "Say '{{ pair.word }}' in {{ pair.language }}, {{ tone }}." }
output: { path: dist/out.jsonl, format: jsonl, record: { language: "{{ pair.language }}", word: "{{ pair.word }}", said: "{{ say }}" } }
`,
      // language repeats and so does word: as two values files, neither could be read.
      "data/pairs.csv": "language,word\nfr,bonjour\nfr,merci\nde,merci\n",
    });
    const b = await build(p);
    assert.deepEqual(b.prompts.sort(), ["Say 'bonjour' in fr, dry.", "Say 'merci' in de, dry-ish.", "Say 'merci' in fr, warm."]);
    assert.deepEqual(
      rowsOf(await p.read("dist/out.jsonl"))
        .map((r) => `${r.language}:${r.word}`)
        .sort(),
      ["de:merci", "fr:bonjour", "fr:merci"],
    );
  });

  test("JSONL rows and a json_schema answer: later templates read their fields; records keep their JSON types", async () => {
    const p = await project({
      "dataset.yaml": `version: 1
name: typed
${model}
dimensions:
  topic: { rows: data/topics.jsonl, key: slug }
  take: [1, 2]
steps:
  - id: q
    generate:
      prompt: "Ask about {{ topic.name }} (take {{ take }})"
      json_schema:
        type: object
        properties: { question: { type: string }, difficulty: { type: integer } }
        required: [question, difficulty]
        additionalProperties: false
  - id: a
    generate: { prompt: "Answer at level {{ q.difficulty }}: {{ q.question }}" }
  - id: echo
    generate: { prompt: "Raw: {{ q }}" }
output:
  path: dist/out.jsonl
  format: jsonl
  record:
    n: "{{ topic.n }}"
    hot: "{{ topic.hot }}"
    meta: "{{ topic.meta }}"
    first_tag: "{{ topic.tags[0] }}"
    difficulty: "{{ q.difficulty }}"
    raw: "{{ q }}"
    take: "{{ take }}"
    mixed: "n={{ topic.n }}"
    spaced: " {{ topic.n }}"
`,
      "data/topics.jsonl":
        '{"slug": "tides", "name": "tides", "n": 3, "hot": true, "meta": {"src": "wiki"}, "tags": ["sea", "moon"]}\n\n{"slug": "ice", "name": "ice", "n": 0, "hot": false, "meta": {"src": "book"}, "tags": ["cold"]}\n',
    });
    const b = await build(p);
    assert.equal(b.prompts.length, 12);
    const rows = rowsOf(await p.read("dist/out.jsonl"));
    assert.equal(rows.length, 4);
    for (const r of rows) {
      const answer = JSON.parse(r.raw);
      assert.equal(typeof r.raw, "string", "{{ q }} is the answer's text, as it always was");
      assert.equal(r.difficulty, answer.difficulty);
      assert.equal(typeof r.difficulty, "number");
      assert.ok(b.prompts.includes(`Answer at level ${answer.difficulty}: ${answer.question}`), "the later step read the answer's fields");
      assert.ok(b.prompts.includes(`Raw: ${r.raw}`));
      assert.equal(r.take === "1" || r.take === "2", true, "a plain dimension value stays text");
      assert.equal(typeof r.mixed, "string");
      assert.equal(typeof r.spaced, "string", "text around the value makes it text");
    }
    const tides = rows.find((r) => r.first_tag === "sea")!;
    assert.deepEqual({ n: tides.n, hot: tides.hot, meta: tides.meta, mixed: tides.mixed }, { n: 3, hot: true, meta: { src: "wiki" }, mixed: "n=3" });
    const ice = rows.find((r) => r.first_tag === "cold")!;
    assert.deepEqual({ n: ice.n, hot: ice.hot }, { n: 0, hot: false });
  });

  test("an answer without a field no schema promised drops its own sample, or leaves out its row, and the build goes on", async () => {
    const manifest = (prompt: string, record: string) => `version: 1
name: free
model: { provider: echo, name: echo }
dimensions:
  a: [x, y]
steps:
  - id: q
    generate: { prompt: "{{ a }}", json_schema: { type: object } }
  - id: r
    generate: { prompt: "${prompt}" }
output: { path: dist/out.jsonl, format: jsonl, record: ${record} }
`;
    const p = await project({ "dataset.yaml": manifest("{{ q.nothere }}", '{ r: "{{ r }}" }') });
    let r = await runCli(["build", "--offline", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).dropped, 2);
    assert.match(await p.read("dataset.lock"), /"why":"cannot render with its answers' fields: undefined variable: q.nothere"/);
    await p.write({ "dataset.yaml": manifest("{{ q }}", '{ r: "{{ r }}", x: "{{ q.nothere }}" }') });
    r = await runCli(["build", "--offline"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /left out 2 rows .*undefined variable: q\.nothere/);
    assert.equal(await p.read("dist/out.jsonl"), "");
  });

  test("a run module gets a row as an object and a structured answer as its text", async () => {
    const p = await project({
      "dataset.yaml": `version: 1
name: runs
${model}
dimensions:
  seed: { rows: data/seeds.jsonl }
steps:
  - id: q
    generate:
      prompt: "Ask about {{ seed.topic }}"
      json_schema: { type: object, properties: { question: { type: string } }, required: [question], additionalProperties: false }
  - id: post
    run: { module: steps/post.mjs }
output: { path: dist/out.jsonl, format: jsonl, record: { post: "{{ post }}", question: "{{ q.question }}" } }
`,
      "data/seeds.jsonl": '{"topic": "tides", "n": 2}\n',
      "steps/post.mjs": "export default (v) => `${typeof v.seed}:${v.seed.topic}:${v.seed.n + 1}:${typeof v.q}:${JSON.parse(v.q).question.length > 0}`;\n",
    });
    await build(p);
    const [row] = rowsOf(await p.read("dist/out.jsonl"));
    assert.equal(row.post, "object:tides:3:string:true");
  });
});
