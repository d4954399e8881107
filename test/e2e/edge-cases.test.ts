import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { AtomicFileWriter } from "../../src/util/fs-atomic.js";
import { alterPacked } from "../helpers/cache-files.js";
import { runCli, runCliSync } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer } from "../server/openai-test-server.js";

/** Found by review: each of these once went wrong. */

const echo = (dims: string, rest = "", output = `output: { path: dist/x.jsonl, format: jsonl, record: { a: "{{ a }}", s: "{{ s }}" } }`) =>
  `version: 1\nname: e\nmodel: { provider: echo }\ndimensions:\n${dims}\n${rest}steps:\n  - id: s\n    generate: { prompt: "About {{ a }}" }\n${output}\n`;

describe("edge cases", () => {
  test("reordering values or dimensions changes neither dist/ nor the lock, and verify agrees", async () => {
    const p = await TempProject.create({ "dataset.yaml": echo("  a: [x, y, z]\n  b: [1, 2]") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const dist = await p.snapshot();
    const lock = await p.read("dataset.lock");
    await p.write({ "dataset.yaml": echo("  b: [2, 1]\n  a: [z, x, y]") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    await p.write({ "dist/x.jsonl": "" });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.deepEqual(await p.snapshot(), dist);
    assert.equal(await p.read("dataset.lock"), lock);
    await p.remove();
  });

  test("temp files a killed build left beside dist/ and the lock are removed by the next build; others' files are not", async () => {
    const manifest = echo(
      "  a: [x, y]",
      "",
      "output:\n  - { path: dist/x.jsonl, format: jsonl, record: { a: '{{ a }}' } }\n  - { path: dist/f, format: files, prompt: '{{ a }}', completion: '{{ s }}' }",
    );
    const p = await TempProject.create({ "dataset.yaml": manifest });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const release = await p.snapshot();
    // What kill -9 between write and rename leaves: the real writer's temp files, never committed.
    const left: AtomicFileWriter[] = [];
    for (const path of ["dist/x.jsonl", "dataset.lock", "dist/f/prompts/x.txt"]) {
      const w = await AtomicFileWriter.open(join(p.dir, path));
      await w.write("half a file");
      left.push(w);
    }
    await p.write({ "dist/notes.tmp-1-0badf00d": "the user's", "dist/x.jsonl.tmp-old": "not ours either" });
    // A no-op (the old release is whole) and a rebuild both sweep.
    const r = await runCli(["build"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /removed 3 temp file\(s\) an interrupted build left/);
    const after = await readdir(join(p.dir, "dist"), { recursive: true });
    assert.deepEqual(after.filter((f) => f.includes(".tmp-")).sort(), ["notes.tmp-1-0badf00d", "x.jsonl.tmp-old"]);
    assert.deepEqual(
      (await readdir(p.dir)).filter((f) => f.includes(".tmp-")),
      [],
    );
    const { ["dist/notes.tmp-1-0badf00d"]: _n, ["dist/x.jsonl.tmp-old"]: _o, ...rest } = await p.snapshot();
    assert.deepEqual(rest, release);
    await p.remove();
  });

  test("unquoted numbers in a dimension keep their spelling", async () => {
    const p = await TempProject.create({ "dataset.yaml": echo("  a: [3.9, 3.10, 3.1, 007, 1e3]") });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const values = (await p.read("dist/x.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l).a)
      .sort();
    assert.deepEqual(values, ["007", "1e3", "3.1", "3.10", "3.9"]);
    await p.remove();
  });

  test("samples sharing one request are counted, planned and sent once", async () => {
    const server = await startTestServer();
    const p = await TempProject.create({
      "dataset.yaml": `version: 1\nname: d\nmodel: { name: m, base_url: "${server.baseURL}" }\ndimensions:\n  genre: [a, b]\n  place: [p, q, r]\nsteps:\n  - id: s\n    generate: { prompt: "tagline for {{ genre }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ genre }} {{ place }}", completion: "{{ s }}" }\n`,
    });
    try {
      const plan = await runCli(["plan", "--json"], p.dir, { OPENAI_API_KEY: "k" });
      assert.equal(JSON.parse(plan.stdout).requests, 2);
      const r = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: "k" });
      assert.equal(JSON.parse(r.stdout).requests, 2);
      assert.equal(server.requests.length, 2);
      assert.equal(JSON.parse(r.stdout).outputs[0].rows, 6);
    } finally {
      await server.close();
      await p.remove();
    }
  });

  test("--frozen names only the samples whose lock entries changed", async () => {
    const p = await TempProject.create({ "dataset.yaml": echo("  a: [x, y, z]") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dataset.yaml": echo("  a: [x, y, w]") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dataset.yaml": echo("  a: [x, y, z]") });
    const r = runCliSync(["build", "--frozen"], p.dir);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /2 samples differ/, r.stderr);
    await p.remove();
  });

  test("an unreadable lock is a user error for verify, gc and show, and rewritten by build", async () => {
    const p = await TempProject.create({ "dataset.yaml": echo("  a: [x]") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const id = JSON.parse((await p.read("dataset.lock")).split("\n")[2]!).id as string;
    await p.write({ "dataset.lock": "<<<<<<< HEAD\n{}\n" });
    for (const args of [["verify"], ["gc"], ["show", id], ["build", "--frozen"]]) {
      const r = runCliSync(args, p.dir);
      assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, /dataset\.lock cannot be read/);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    const b = runCliSync(["build"], p.dir);
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stderr, /written anew/);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    await p.remove();
  });

  test("values named like Object.prototype members are ordinary values", async () => {
    const p = await TempProject.create({
      "dataset.yaml": echo("  a: [toString, constructor, x]\n  sub:\n    by: a\n    values: { x: [one] }\n    default: [other]"),
    });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).samples, 3);
    await p.remove();
  });

  test("an output path that is a folder is a usage error before any request", async () => {
    const p = await TempProject.create({
      "dataset.yaml": echo("  a: [x]", "", `output: { path: out, format: jsonl, record: { a: "{{ a }}" } }`),
      "out/keep.txt": "x",
    });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /output out is a folder/);
    assert.equal(await p.exists("cache/objects"), false);
    assert.equal(await p.exists("cache/packs"), false);
    await p.remove();
  });

  test("--offline builds structured output with schema-shaped answers", async () => {
    const p = await TempProject.create({
      "dataset.yaml": `version: 1\nname: j\nmodel: { name: m }\ndimensions:\n  a: [x, y]\nsteps:\n  - id: s\n    generate:\n      prompt: "About {{ a }}"\n      json_schema: { type: object, properties: { title: { type: string }, score: { type: integer, minimum: 1 }, tags: { type: array, items: { enum: [a, b] } } }, required: [title, score, tags] }\noutput: { path: dist/x.jsonl, format: jsonl, record: { s: "{{ s }}" } }\n`,
    });
    const r = runCliSync(["build", "--offline", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const answer = JSON.parse(JSON.parse((await p.read("dist/x.jsonl")).split("\n")[0]!).s);
    assert.equal(answer.score, 1);
    assert.deepEqual(answer.tags, ["a"]);
    assert.match(answer.title, /offline echo/);
    await p.remove();
  });

  test("${VAR} in a dimension value or a template is literal text, not the environment", async () => {
    const p = await TempProject.create({ "dataset.yaml": echo(`  a: ['echo "\${HOME}"']`) });
    const r = runCliSync(["build"], p.dir, { HOME: "/h0me-xyzzy" });
    assert.equal(r.status, 0, r.stderr);
    const text = await p.read("dist/x.jsonl");
    assert.match(text, /\$\{HOME\}/);
    assert.doesNotMatch(text, /xyzzy/);
    await p.remove();
  });

  test("--json prints one error object on stdout when a command fails", async () => {
    const p = await TempProject.create({ "dataset.yaml": echo("  a: [x]") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dist/x.jsonl": "tampered\n" });
    const v = runCliSync(["verify", "--json"], p.dir);
    assert.equal(v.status, 1);
    const err = JSON.parse(v.stdout);
    assert.equal(err.error.exit_code, 1);
    assert.match(err.error.problems[0], /differs from the lock/);
    await p.write({ "dataset.yaml": "version: 1\nname: e\ndimensons: {}\n" });
    const bad = runCliSync(["plan", "--json"], p.dir);
    assert.equal(bad.status, 2);
    assert.ok(JSON.parse(bad.stdout).error.diagnostics.length >= 1, bad.stdout);
    await p.remove();
  });

  test("a cache entry garbled in place: verify removes it, --frozen fails naming the sample, build repairs it", async () => {
    const p = await TempProject.create({ "dataset.yaml": echo("  a: [x]") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const dist = await p.snapshot();
    const [key] = await p.cacheKeys();
    // Still valid JSON, same length: only the entry's checksum can tell.
    await alterPacked(join(p.dir, "cache"), key!, "offline echo", "offline ECHO");
    const sample = JSON.parse((await p.read("dataset.lock")).split("\n")[2]!).id as string;
    const v = runCliSync(["verify"], p.dir);
    assert.equal(v.status, 1);
    assert.match(v.stderr, /corrupt in the cache/);
    assert.match(v.stderr, /removed: `synthbuild build` requests it again/);
    const frozen = runCliSync(["build", "--frozen"], p.dir);
    assert.equal(frozen.status, 1, frozen.stderr);
    assert.match(frozen.stderr, new RegExp(sample));
    const b = runCliSync(["build", "--json"], p.dir);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(JSON.parse(b.stdout).requests, 1, "the build asks for the removed answer again");
    assert.deepEqual(await p.snapshot(), dist);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    assert.equal(runCliSync(["build", "--frozen"], p.dir).status, 0);
    await p.remove();
  });
});

describe("stale outputs", () => {
  test("a renamed output's old file is removed if untouched, kept if someone changed it", async () => {
    const out = (path: string) => `output: { path: ${path}, format: jsonl, record: { a: "{{ a }}" } }`;
    const p = await TempProject.create({ "dataset.yaml": echo("  a: [x]", "", out("dist/old.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dataset.yaml": echo("  a: [x]", "", out("dist/new.jsonl")) });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /removed dist\/old\.jsonl/);
    assert.deepEqual(Object.keys(await p.snapshot()), ["dist/README.md", "dist/new.jsonl"]);
    await p.write({ "dist/new.jsonl": "mine\n", "dataset.yaml": echo("  a: [x]", "", out("dist/third.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.equal(await p.read("dist/new.jsonl"), "mine\n");
    await p.remove();
  });
});

test("--frozen reads every answer: a garbled entry fails it even when a no-op build would pass", async () => {
  const p = await TempProject.create({ "dataset.yaml": echo("  a: [x, y]") });
  assert.equal(runCliSync(["build"], p.dir).status, 0);
  const [key] = await p.cacheKeys();
  await alterPacked(join(p.dir, "cache"), key!, "offline echo", "offline ECHO");
  const frozen = runCliSync(["build", "--frozen"], p.dir);
  assert.equal(frozen.status, 1, frozen.stderr);
  assert.match(frozen.stderr, /not in the cache/);
  await p.remove();
});
