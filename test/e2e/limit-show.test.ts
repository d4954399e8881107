import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO, runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** `build --limit` (a trial run) and `show` (one sample to its row), through the real binary. */

describe("build --limit", { concurrency: false }, () => {
  let server: TestServer;
  const KEY = "sk-test-limit-4242";
  before(async () => {
    server = await startTestServer({ apiKey: KEY });
  });
  after(() => server.close());

  test("after a value is added, --limit 2 requests 2 of the samples that need one (the first N are all cached)", async () => {
    const m = (places: string) => `version: 1
name: limit
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  concurrency: 4
  retries: 1
dimensions:
  genre: [sf, romance, comedy]
  place: [${places}]
steps:
  - id: outline
    generate: { prompt: "Outline a {{ genre }} story in {{ place }}." }
output: { path: dist/x.jsonl, format: prompt-completion, prompt: "{{ genre }} {{ place }}", completion: "{{ outline }}" }
`;
    const env = { TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY };
    const p = await TempProject.create({ "dataset.yaml": m("Paris, Kyoto") });
    const full = await runCli(["build", "--json"], p.dir, env);
    assert.equal(full.status, 0, full.stderr);
    assert.equal(server.requests.length, 6);
    await p.write({ "dataset.yaml": m("Paris, Kyoto, Lagos") });
    const planned = await runCli(["plan", "--json", "--limit", "2"], p.dir, env);
    assert.equal(planned.status, 0, planned.stderr);
    assert.equal(JSON.parse(planned.stdout).requests, 2, "plan --limit says what build --limit will do");
    server.reset();
    const r = await runCli(["build", "--json", "--limit", "2"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(server.requests.length, 2, "exactly 2 requests reached the endpoint");
    for (const q of server.requests) assert.match(q.body.messages.at(-1).content, /Lagos/);
    const json = JSON.parse(r.stdout);
    assert.equal(json.requests, 2);
    assert.equal(json.held_back, 1);
    assert.equal(json.outputs[0].rows, 8);
    assert.match(r.stderr, /1 not built \(1 outside --limit\)/);
    // The next trial run takes the one left; then nothing is left to try.
    server.reset();
    assert.equal((await runCli(["build", "--json", "--limit", "2"], p.dir, env)).status, 0);
    assert.equal(server.requests.length, 1);
    await p.remove();
  });
});

describe("show", () => {
  const manifest = `version: 1
name: show
seed: 5
model: { provider: echo }
dimensions:
  n: [v1, v2, v3, v4, v5, v6]
steps:
  - id: s
    generate: { prompt: "Say {{ n }}" }
  - id: no-v3
    filter: { field: s, must_not_match: "Say v3" }
output:
  path: dist/x.jsonl
  format: prompt-completion
  prompt: "{{ n }}"
  completion: "{{ s }}"
  split: { train: 0.5, validation: 0.5 }
`;
  const lockLines = async (p: TempProject) =>
    (await p.read("dataset.lock"))
      .split("\n")
      .filter((l) => l.includes('"values"'))
      .map((l) => JSON.parse(l));

  test("ends with the row as written to dist/ and its split, or why there is none", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest });
    assert.equal((await runCli(["build", "--offline", "-q"], p.dir)).status, 0);
    const samples = await lockLines(p);
    const kept = samples.find((s) => s.status === "kept" && s.values.n === "v1")!;
    const r = await runCli(["show", kept.id.slice(0, 6)], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const file = `dist/x.${kept.split}.jsonl`;
    const tail = r.stdout.trimEnd().split("\n").slice(-2);
    assert.equal(tail[0], `── row in ${file}  (split ${kept.split})`);
    const written = (await p.read(file)).split("\n");
    assert.ok(written.includes(tail[1]!.trim()), `${tail[1]} is not a line of ${file}`);
    assert.equal(JSON.parse(tail[1]!).prompt, "v1");
    const json = JSON.parse((await runCli(["show", kept.id, "--json"], p.dir)).stdout);
    assert.deepEqual(
      json.rows.map((x: { path: string; split: string; in_dist: boolean }) => [x.path, x.split, x.in_dist]),
      [[file, kept.split, true]],
    );

    const dropped = samples.find((s) => s.values.n === "v3")!;
    assert.equal(dropped.status, "dropped");
    const d = await runCli(["show", dropped.id], p.dir);
    assert.equal(d.status, 0, d.stderr);
    assert.match(d.stdout.trimEnd().split("\n").at(-1)!, /^── row: none \(dropped by no-v3: .+\)$/);

    // The output's template edited, dist/ not rebuilt: the row it would write, and that it is not there yet.
    await p.write({ "dataset.yaml": manifest.replace('prompt: "{{ n }}"', 'prompt: "n={{ n }}"') });
    const stale = JSON.parse((await runCli(["show", kept.id, "--json"], p.dir)).stdout);
    assert.deepEqual(stale.rows[0], { path: file, split: kept.split, record: { ...JSON.parse(tail[1]!), prompt: "n=v1" }, in_dist: false });
    // Not built yet: no row, and it says so.
    await p.write({ "dataset.yaml": manifest.replace("v6]", "v6, v7]") });
    const fresh = await runCli(["show", "--json", await newId(p, samples)], p.dir);
    assert.match(JSON.parse(fresh.stdout).no_row, /not built yet/);
    await p.remove();
  });

  test("a files output: the prompt file the row was written to", async () => {
    const files = manifest.replace(
      /output:[\s\S]*$/,
      'output: { path: dist/files, format: files, prompt: "{{ n }}", completion: "{{ s }}", split: { train: 0.5, validation: 0.5 } }\n',
    );
    const p = await TempProject.create({ "dataset.yaml": files });
    assert.equal((await runCli(["build", "--offline", "-q"], p.dir)).status, 0);
    const kept = (await lockLines(p)).find((s) => s.values.n === "v2")!;
    const json = JSON.parse((await runCli(["show", kept.id, "--json"], p.dir)).stdout);
    assert.deepEqual(json.rows[0].path, `dist/files/${kept.split}/prompts/v2.txt`);
    assert.equal(json.rows[0].in_dist, true);
    assert.equal(await p.read(json.rows[0].path), "v2");
    await p.remove();
  });

  test("an ambiguous prefix is an error listing the candidates", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest.replace("v6]", "v6" + Array.from({ length: 40 }, (_, i) => `, w${i}`).join("") + "]") });
    assert.equal((await runCli(["build", "--offline", "-q"], p.dir)).status, 0);
    const ids = (await lockLines(p)).map((s) => s.id as string);
    const prefix = [...new Set(ids.map((id) => id[0]!))].find((c) => ids.filter((id) => id.startsWith(c)).length >= 2)!;
    const r = await runCli(["show", prefix], p.dir);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${prefix} matches \\d+ samples`));
    for (const id of ids.filter((x) => x.startsWith(prefix)).slice(0, 10)) assert.ok(r.stderr.includes(id), `${id} not listed`);
    assert.match(r.stderr, /hint: give more characters/);
    await p.remove();
  });

  test("every `show` command in the README works as printed, on the example dataset", async () => {
    const readme = await readFile(join(REPO, "README.md"), "utf8");
    const commands = [...readme.matchAll(/synthbuild show ([0-9a-f]+)/g)].map((m) => m[1]!);
    assert.ok(commands.length >= 1, "the README shows no `show` command");
    const p = await TempProject.create({
      "dataset.yaml": await readFile(join(REPO, "dataset.yaml"), "utf8"),
      "data/places.txt": await readFile(join(REPO, "data", "places.txt"), "utf8"),
    });
    assert.equal((await runCli(["build", "--offline", "-q"], p.dir)).status, 0);
    for (const id of commands) {
      const r = await runCli(["show", id], p.dir);
      assert.equal(r.status, 0, `show ${id}: ${r.stderr}`);
      assert.match(r.stdout, /── row in dist\/plot-outlines\.(train|validation)\.jsonl/);
    }
    await p.remove();
  });
});

/** The id of a sample the lock does not have yet (from `plan --explain --json`). */
async function newId(p: TempProject, known: { id: string }[]): Promise<string> {
  const r = await runCli(["plan", "--offline", "--explain", "--json"], p.dir);
  const ids = (JSON.parse(r.stdout).stale as { id: string }[]).map((s) => s.id).filter((id) => !known.some((k) => k.id === id));
  assert.equal(ids.length, 1, r.stdout);
  return ids[0]!;
}
