import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { exampleManifest } from "../../src/commands/example.js";
import { ManifestError } from "../../src/errors.js";
import { parseManifest } from "../../src/manifest/load.js";
import { manifestJsonSchema } from "../../src/manifest/schema.js";
import { REPO } from "../helpers/cli.js";

const base = (model: string) =>
  `version: 1\nname: t\nmodel: ${model}\ndimensions: { a: [x] }\nsteps:\n  - id: s\n    generate: { prompt: "{{ a }}" }\noutput: { path: dist/x.jsonl, prompt: "p", completion: "{{ s }}" }\n`;

test("${VAR} and ${VAR:-default} interpolate before validation; $$ is a literal $", async () => {
  const m = await parseManifest("d.yaml", "/p/d.yaml", base("{ name: '${MODEL}', base_url: '${URL:-http://localhost:1/v1}', headers: { x: 'a$$b' } }"), {
    MODEL: "gpt-test",
  });
  const step = m.steps[0]!;
  assert.equal(step.kind, "generate");
  if (step.kind !== "generate") return;
  assert.equal(step.model.name, "gpt-test");
  assert.equal(step.model.baseUrl, "http://localhost:1/v1");
  assert.equal(step.model.headers.x, "a$b");
});

test("an unset variable without default is a positioned error", async () => {
  await assert.rejects(parseManifest("d.yaml", "/p/d.yaml", base("{ name: '${NOPE}' }"), {}), (e: unknown) => {
    assert.ok(e instanceof ManifestError);
    assert.equal(e.diagnostics[0]!.line, 3);
    assert.match(e.diagnostics[0]!.message, /NOPE is not set/);
    return true;
  });
});

test("every problem is reported at once, in one error", async () => {
  const text = `version: 1\nname: t\nmodel: { name: m }\ndimensions: { a: [x, x], b: [] }\nsteps:\n  - id: s\n    generate: { prompt: "{{ c }}" }\noutput: { path: dist/x.jsonl, prompt: "p", completion: "{{ s }}" }\n`;
  await assert.rejects(parseManifest("d.yaml", "/p/d.yaml", text, {}), (e: unknown) => {
    assert.ok(e instanceof ManifestError);
    const messages = e.diagnostics.map((d) => d.message).join("\n");
    assert.match(messages, /appears twice/);
    assert.match(messages, /empty dimension/);
    assert.match(messages, /unknown variable 'c'/);
    return true;
  });
});

test("a step override merges into the manifest's model", async () => {
  const text = `version: 1\nname: t\nmodel: { name: m, params: { temperature: 1, max_tokens: 10 }, concurrency: 3 }\ndimensions: { a: [x] }\nsteps:\n  - id: s\n    generate: { prompt: "{{ a }}", model: { params: { temperature: 0.2 } } }\noutput: { path: dist/x.jsonl, prompt: "p", completion: "{{ s }}" }\n`;
  const m = await parseManifest("d.yaml", "/p/d.yaml", text, {});
  const s = m.steps[0]!;
  assert.ok(s.kind === "generate");
  assert.deepEqual(s.model.params, { temperature: 0.2, max_tokens: 10 });
  assert.equal(s.model.concurrency, 3);
});

test("the repository's dataset.yaml is the example `init` writes", async () => {
  const text = await readFile(`${REPO}/dataset.yaml`, "utf8");
  assert.equal(text, exampleManifest("./schema/dataset.schema.json"));
});

test("schema/dataset.schema.json is generated from the current schema", async () => {
  const text = await readFile(`${REPO}/schema/dataset.schema.json`, "utf8");
  assert.deepEqual(JSON.parse(text), JSON.parse(JSON.stringify(manifestJsonSchema())));
  const schema = JSON.parse(text);
  assert.ok(schema.properties.dimensions && schema.properties.steps && schema.properties.output);
  assert.deepEqual(schema.required.sort(), ["dimensions", "name", "output", "version"]);
});

test("an unquoted whole-scalar ${VAR} takes the type it would have had if written", async () => {
  const model = "\n  name: m\n  params:\n    temperature: ${T:-0.5}\n    max_tokens: ${MAX}\n  headers:\n    x: '${MAX}'";
  const m = await parseManifest("d.yaml", "/p/d.yaml", base(model), { MAX: "64" });
  const s = m.steps[0]!;
  assert.ok(s.kind === "generate", "a generate step");
  assert.deepEqual(s.model.params, { temperature: 0.5, max_tokens: 64 });
  assert.equal(s.model.headers.x, "64");
});

const jsonSteps = (read: string) => `version: 1
name: t
model: { name: m }
dimensions: { a: [x] }
steps:
  - id: q
    generate:
      prompt: "{{ a }}"
      json_schema:
        type: object
        required: [meta, free, tags]
        properties:
          meta: { type: object, properties: { source: { type: string }, note: { type: string } }, required: [source] }
          free: { type: object }
          tags: { type: array, items: { type: object, properties: { name: { type: string } }, required: [name] } }
  - id: s
    generate: { prompt: "${read}" }
output: { path: dist/x.jsonl, prompt: "p", completion: "{{ s }}" }
`;

test("fields of a structured answer are checked through nested properties and list items, not past what the schema declares", async () => {
  for (const ok of ["{{ q.meta.source }}", "{{ q.free.anything.at_all }}", "{{ q.tags[0].name }}", "{{ q.size }}", "{{ q }}"]) {
    const m = await parseManifest("d.yaml", "/p/d.yaml", jsonSteps(ok), {});
    const q = m.steps[0]!;
    // The answer is parsed only for a template that reads a field of it.
    assert.equal(q.kind === "generate" && q.parseAnswer, ok === "{{ q }}" || ok === "{{ q.size }}" ? undefined : true, ok);
  }
  for (const [bad, message, hint] of [
    ["{{ q.meta.sorce }}", "step q's json_schema has no field 'sorce' in q.meta", "did you mean 'source'?"],
    ["{{ q.tags[0].nmae }}", "step q's json_schema has no field 'nmae' in q.tags[0]", "did you mean 'name'?"],
    [
      "{{ q.meta.note }}",
      "q.meta.note may be missing from an answer: step q's json_schema does not list 'note' under required",
      "add it to required: [source, note]",
    ],
  ] as const) {
    await assert.rejects(parseManifest("d.yaml", "/p/d.yaml", jsonSteps(bad), {}), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.equal(e.diagnostics[0]!.message, message);
      assert.ok(e.diagnostics[0]!.hint?.startsWith(hint), e.diagnostics[0]!.hint);
      return true;
    });
  }
});

test("rows: a line break inside a quoted CSV field does not shift the line a repeated row is reported at", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sb-rows-"));
  try {
    await mkdir(join(dir, "data"));
    await writeFile(join(dir, "data", "s.csv"), 'id,q\n1,"one\ntwo\nthree"\n2,b\n\n1,"one\ntwo\nthree"\n');
    const text = `version: 1\nname: t\nmodel: { name: m }\ndimensions: { s: { rows: data/s.csv } }\noutput: { path: dist/x.jsonl, prompt: "{{ s.q }}", completion: "{{ s.id }}" }\n`;
    await assert.rejects(parseManifest("d.yaml", join(dir, "d.yaml"), text, {}), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.equal(e.diagnostics[0]!.message, "data/s.csv:7: this row repeats the row on line 2");
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("rows: a path into a JSONL row that some row cannot follow is a load-time error naming that row's line", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sb-rows-"));
  try {
    await mkdir(join(dir, "data"));
    await writeFile(join(dir, "data", "t.jsonl"), '{"name": "a", "meta": {"src": "x"}, "tags": ["p", "q"]}\n\n{"name": "b", "meta": null, "tags": ["r"]}\n');
    const manifest = (read: string) =>
      `version: 1\nname: t\nmodel: { name: m }\ndimensions: { t: { rows: data/t.jsonl } }\noutput: { path: dist/x.jsonl, prompt: "${read}", completion: "{{ t.name }}" }\n`;
    for (const ok of ["{{ t.meta }}", "{{ t.tags[0] }}", "{{ t.tags.size }}", "{{ t.name.size }}", "{% for x in t.tags %}{{ x }}{% endfor %}"])
      await parseManifest("d.yaml", join(dir, "d.yaml"), manifest(ok), {});
    for (const [bad, message] of [
      ["{{ t.meta.src }}", "t.meta.src is missing from the row on line 3 of data/t.jsonl"],
      ["{{ t.tags[1] }}", "t.tags[1] is missing from the row on line 3 of data/t.jsonl"],
    ] as const) {
      await assert.rejects(parseManifest("d.yaml", join(dir, "d.yaml"), manifest(bad), {}), (e: unknown) => {
        assert.ok(e instanceof ManifestError);
        assert.equal(e.diagnostics[0]!.message, message);
        return true;
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a values file that is missing is one error: an exclude naming its dimension adds none, while a misspelled name still does", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sb-missing-"));
  try {
    const text = `version: 1\nname: t\nmodel: { name: m }\ndimensions: { genre: [sf, noir], place: { file: data/place.txt } }\ncombine: { exclude: [{ genre: sf, place: Paris }, { genra: noir }] }\noutput: { path: dist/x.jsonl, prompt: "{{ genre }} {{ place }}", completion: "c" }\n`;
    await assert.rejects(parseManifest("d.yaml", join(dir, "d.yaml"), text, {}), (e: unknown) => {
      assert.ok(e instanceof ManifestError);
      assert.deepEqual(
        e.diagnostics.map((d) => d.message),
        ["file not found: data/place.txt", "exclude names an unknown dimension 'genra'"],
      );
      return true;
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("card: { license } is kept as written; no card: key leaves none; a value that is not an id is a positioned error with a hint", async () => {
  const withCard = (card: string) => base("{ provider: echo }").replace("dimensions:", `${card}\ndimensions:`);
  const m = await parseManifest("d.yaml", "/p/d.yaml", withCard("card: { license: cc-by-4.0 }"), {});
  assert.deepEqual(m.card, { license: "cc-by-4.0" });
  assert.equal((await parseManifest("d.yaml", "/p/d.yaml", withCard("card: {}"), {})).card, undefined);
  assert.equal((await parseManifest("d.yaml", "/p/d.yaml", base("{ provider: echo }"), {})).card, undefined);
  for (const [card, line, col, message, hint] of [
    ["card: { license: Apache 2.0 }", 4, 18, /a license is a Hugging Face license id/, /license: apache-2\.0/],
    ["card: { license: MIT }", 4, 18, /a license is a Hugging Face license id/, /license: mit \(/],
    ["card: { license: 'my license!' }", 4, 18, /a license is a Hugging Face license id/, /e\.g\. license: mit, apache-2\.0 or cc-by-4\.0/],
    [`card: { license: ${"a".repeat(65)} }`, 4, 18, /at most 64/, /e\.g\. license: mit/],
    ["card: { license: 2 }", 4, 18, /expected string, got number 2/, /e\.g\. license: mit/],
    ["card: { licence: mit }", 4, 9, /unknown key 'licence'/, /did you mean 'license'/],
    ["license: mit", 4, 1, /unknown key 'license'/, /under the top-level key card: card: \{ license: mit \}/],
  ] as const) {
    await assert.rejects(parseManifest("d.yaml", "/p/d.yaml", withCard(card), {}), (e: unknown) => {
      assert.ok(e instanceof ManifestError, card);
      const d = e.diagnostics[0]!;
      assert.deepEqual([d.line, d.col], [line, col], card);
      assert.match(d.message, message, card);
      assert.match(d.hint ?? "", hint, card);
      return true;
    });
  }
});

test("card.license is in no sample's id or recipe: samples are the same with any license or none", async () => {
  const { expand } = await import("../../src/expand/expand.js");
  const text = (card: string) => base("{ provider: echo }").replace("dimensions: { a: [x] }", `${card}\ndimensions: { a: [x, y, z] }`);
  const ids = async (card: string) =>
    expand(await parseManifest("d.yaml", "/p/d.yaml", text(card), {})).map((s) => JSON.stringify([s.id, s.comboId, s.values]));
  const none = await ids("");
  assert.deepEqual(await ids("card: { license: mit }"), none);
  assert.deepEqual(await ids("card: { license: apache-2.0 }"), none);
  const steps = async (card: string) => (await parseManifest("d.yaml", "/p/d.yaml", text(card), {})).steps.map((s) => s.defHash);
  assert.deepEqual(await steps("card: { license: mit }"), await steps(""));
});
