import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { REPO, runCliSync } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

describe("the example, offline", () => {
  let p: TempProject;
  before(async () => {
    p = await TempProject.example();
  });
  after(() => p.remove());

  test("build --offline writes the split dataset and the lock; --json is the only stdout", async () => {
    const r = runCliSync(["build", "--offline", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    for (const k of ["samples", "requests", "cached", "failed", "dropped", "outputs"]) assert.ok(k in json, `--json lacks ${k}`);
    assert.equal(json.samples, 90);
    assert.equal(json.requests, 180);
    assert.deepEqual(
      json.outputs.map((o: { path: string }) => o.path),
      ["dist/plot-outlines.train.jsonl", "dist/plot-outlines.validation.jsonl"],
    );
    assert.match(r.stderr, /built 90 samples/);
    const row = JSON.parse((await p.read("dist/plot-outlines.train.jsonl")).split("\n")[0]!);
    assert.deepEqual(
      row.messages.map((m: { role: string }) => m.role),
      ["system", "user", "assistant"],
    );
    assert.match(row.messages[1].content, /^Genre: .+\nLocation: .+\nPeriod: .+\nModifier: .+\n\nPLOT OUTLINE:$/);
    assert.match(row.messages[2].content, /^\[offline echo [0-9a-f]{8}\]/);
    const lock = await p.read("dataset.lock");
    assert.match(lock.split("\n")[0]!, /"offline":true/);
    assert.match(lock, /"model":"synthbuild-echo"/);
  });

  test("a second build makes no request and rewrites nothing differently", async () => {
    const dist = await p.snapshot();
    const lock = await p.read("dataset.lock");
    const r = runCliSync(["build", "--offline", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).requests, 0);
    assert.deepEqual(await p.snapshot(), dist);
    assert.equal(await p.read("dataset.lock"), lock);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
  });

  test("plan --json has the documented shape and makes no request", async () => {
    const r = runCliSync(["plan", "--json", "--offline"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const plan = JSON.parse(r.stdout);
    assert.equal(plan.samples, 90);
    assert.equal(plan.requests, 0);
    assert.deepEqual(Object.keys(plan.steps[0]).sort(), ["cached", "id", "kind", "to_run", "total"]);
    assert.deepEqual(Object.keys(plan.estimate).sort(), ["cost_usd", "input_tokens", "output_tokens"]);
    const online = JSON.parse(runCliSync(["plan", "--json"], p.dir).stdout);
    assert.equal(online.requests, 180, "offline answers must not count as the real model's");
    assert.ok(online.estimate.cost_usd > 0, "gpt-4o-mini has a price");
  });

  test("show prints one sample's requests and answers", async () => {
    const id = JSON.parse((await p.read("dataset.lock")).split("\n")[3]!).id as string;
    const r = runCliSync(["show", id.slice(0, 6)], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`sample ${id}`));
    assert.match(r.stdout, /── outline \(generate, cached\)/);
    assert.match(r.stdout, /Imagine a complete and detailed plot outline/);
    const json = JSON.parse(runCliSync(["show", id, "--offline", "--json"], p.dir).stdout);
    assert.equal(json.steps.length, 5);
    assert.equal(runCliSync(["show", "zzzz"], p.dir).status, 2);
  });

  test("building online without a key fails with a hint and writes nothing new", async () => {
    const lock = await p.read("dataset.lock");
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /OPENAI_API_KEY/);
    assert.match(r.stderr, /--offline/);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
    assert.equal(await p.read("dataset.lock"), lock);
  });
});

describe("commands and usage", () => {
  test("--help on every command exits 0 and tells the truth about its flags", async () => {
    const p = await TempProject.create();
    const top = runCliSync(["--help"], p.dir);
    assert.equal(top.status, 0);
    for (const c of ["init", "plan", "build", "verify", "show", "gc", "lock", "diff", "migrate", "push", "pull", "reroll"])
      assert.match(top.stdout, new RegExp(`\\n  ${c}`));
    const b = runCliSync(["build", "--help"], p.dir);
    assert.equal(b.status, 0);
    for (const f of ["--json", "--frozen", "--limit", "--concurrency", "--max-cost", "--offline"]) assert.ok(b.stdout.includes(f), `build --help lacks ${f}`);
    const flags: Record<string, string[]> = {
      plan: ["--json", "--explain", "--offline", "--limit"],
      init: ["--force"],
      verify: ["--json", "--drift"],
      show: ["<id>", "--json", "--offline"],
      gc: ["--dry-run", "--json", "--keep"],
      lock: ["--json", "--offline"],
      diff: ["[from]", "[to]", "--json"],
      migrate: ["--from-key", "--offline", "--json"],
      reroll: ["<ids...>", "--step", "--no-build", "--json", "--offline", "--concurrency", "--max-cost"],
    };
    for (const [cmd, want] of Object.entries(flags)) {
      const h = runCliSync([cmd, "--help"], p.dir);
      assert.equal(h.status, 0, `${cmd} --help exited ${h.status}`);
      for (const f of want) assert.ok(h.stdout.includes(f), `${cmd} --help lacks ${f}`);
    }
    await p.remove();
  });

  test("--version is package.json's version", async () => {
    const { version } = JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string };
    const r = runCliSync(["--version"], REPO);
    assert.equal(r.status, 0);
    assert.equal(r.stdout.trim(), version);
  });

  test("usage errors exit 2", async () => {
    const p = await TempProject.create();
    assert.equal(runCliSync(["frobnicate"], p.dir).status, 2);
    assert.equal(runCliSync(["build", "--limit", "0"], p.dir).status, 2);
    const missing = runCliSync(["build"], p.dir);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /no manifest at dataset\.yaml/);
    assert.match(missing.stderr, /synthbuild init/);
    const folder = runCliSync(["-f", ".", "plan"], p.dir);
    assert.equal(folder.status, 2, folder.stderr);
    assert.match(folder.stderr, /error: \. is a folder, not a manifest\n {2}hint: pass the manifest itself: -f dataset\.yaml/);
    // With --json, a flag the parser refuses is still one JSON object on stdout.
    for (const args of [
      ["build", "--json", "--limit", "abc"],
      ["build", "--json", "--frozn"],
    ]) {
      const r = runCliSync(args, p.dir);
      assert.equal(r.status, 2, r.stderr);
      const { error } = JSON.parse(r.stdout);
      assert.equal(error.kind, "UsageError");
      assert.equal(error.exit_code, 2);
      assert.match(error.message, args.includes("abc") ? /--limit/ : /unknown option '--frozn'/);
    }
    await p.remove();
  });

  test("a cache path that is a file is a usage error, not an internal one", async () => {
    const p = await TempProject.example();
    await p.write({ afile: "", cache: "" });
    const flag = runCliSync(["--cache-dir", "afile", "build", "--offline", "--json"], p.dir);
    assert.equal(flag.status, 2, flag.stderr);
    assert.match(flag.stderr, /error: --cache-dir \S+afile is not a folder\n {2}hint: give a folder/);
    assert.equal(JSON.parse(flag.stdout).error.kind, "UsageError");
    const env = runCliSync(["plan", "--offline"], p.dir, { SYNTHBUILD_CACHE_DIR: join(p.dir, "afile", "sub") });
    assert.equal(env.status, 2, env.stderr);
    assert.match(env.stderr, /SYNTHBUILD_CACHE_DIR \S+sub is not a folder/);
    const beside = runCliSync(["build", "--offline"], p.dir);
    assert.equal(beside.status, 2, beside.stderr);
    assert.match(beside.stderr, /the cache folder \S+cache is not a folder\n {2}hint: move the file named cache/);
    assert.doesNotMatch(beside.stderr + flag.stderr + env.stderr, /internal error|at \S+:\d+:\d+/);
    await p.remove();
  });

  test("init writes a manifest that builds, and refuses to overwrite", async () => {
    const p = await TempProject.create();
    const r = runCliSync(["init"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.ok(await p.exists("data/places.txt"), "init wrote no places file");
    assert.equal(runCliSync(["build", "--offline", "-q", "--limit", "4"], p.dir).status, 0);
    const again = runCliSync(["init"], p.dir);
    assert.equal(again.status, 2);
    assert.match(again.stderr, /--force/);
    assert.equal(runCliSync(["init", "--force"], p.dir).status, 0);
    await p.remove();
  });

  test("--limit N requests N of the samples that need a request; the lock keeps the whole dataset, so gc forgets nothing", async () => {
    const manifest = (a: string) => simple(`  a: [${a}]\n  b: [1, 2]`).replace('"Say {{ a }}"', '"Say {{ a }} {{ b }}"');
    const p = await TempProject.create({ "dataset.yaml": manifest("x, y, z") });
    assert.equal(runCliSync(["build", "--json", "-q"], p.dir).status, 0);
    await p.write({ "dataset.yaml": manifest("x, y, z, w") });
    const r = runCliSync(["build", "--json", "--limit", "1"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.samples, 8);
    assert.equal(json.requests, 1, "(w, 1) and (w, 2) are new, and the limit takes one of them");
    assert.equal(json.held_back, 1);
    assert.equal(json.outputs[0].rows, 7);
    assert.match(r.stderr, /1 not built \(1 outside --limit\)/);
    const gc = runCliSync(["gc", "--json"], p.dir);
    assert.equal(JSON.parse(gc.stdout).removed, 0, "a trial run's lock must still reference every answer");
    await p.remove();
  });
});

const simple = (
  dims: string,
  output = `output: { path: dist/x.jsonl, format: prompt-completion, prompt: "{{ a }}", completion: "{{ s }}" }`,
  combine = "",
) => `version: 1
name: t
model: { provider: echo }
dimensions:
${dims}
${combine}
steps:
  - id: s
    generate: { prompt: "Say {{ a }}" }
${output}
`;

describe("output formats", () => {
  test("prompt-completion, jsonl records and several outputs at once", async () => {
    const p = await TempProject.create({
      "dataset.yaml": simple(
        "  a: [x, y]",
        `output:
  - { path: dist/pc.jsonl, format: prompt-completion, prompt: "P {{ a }}", completion: "{{ s }}" }
  - path: dist/rec.jsonl
    format: jsonl
    record: { topic: "{{ a }}", text: "{{ s | upcase }}", id: "{{ id }}" }`,
      ),
    });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const pc = (await p.read("dist/pc.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(pc[0]), ["prompt", "completion"]);
    assert.deepEqual(pc.map((r) => r.prompt).sort(), ["P x", "P y"]);
    const rec = (await p.read("dist/rec.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(Object.keys(rec[0]), ["topic", "text", "id"]);
    assert.deepEqual(rec.map((r) => r.topic).sort(), ["x", "y"]);
    assert.equal(rec[1].text, rec[1].text.toUpperCase());
    assert.ok(rec[0].id < rec[1].id, "rows are in sample-id order");
    assert.match(rec[0].id, /^[0-9a-f]{16}$/);
    await p.remove();
  });

  test("files: prompts/NAME.txt and completions/NAME.txt, safe and collision-free; stale files removed", async () => {
    const p = await TempProject.create({
      "dataset.yaml": simple(
        '  a: ["../../escape", "a/b", "a b", plain]',
        `output: { path: dist/files, format: files, prompt: "{{ a }}", completion: "{{ s }}" }`,
      ),
    });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const prompts = (await readdir(join(p.dir, "dist/files/prompts"))).sort();
    const completions = (await readdir(join(p.dir, "dist/files/completions"))).sort();
    assert.deepEqual(prompts, completions);
    assert.equal(prompts.length, 4);
    assert.ok(prompts.includes("plain.txt") && prompts.includes("escape.txt"), prompts.join(","));
    for (const f of prompts) assert.match(f, /^[A-Za-z0-9._-]+\.txt$/);
    assert.equal(await p.read("dist/files/prompts/plain.txt"), "plain");
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    await p.write({ "dataset.yaml": simple("  a: [plain]", `output: { path: dist/files, format: files, prompt: "{{ a }}", completion: "{{ s }}" }`) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.deepEqual(await readdir(join(p.dir, "dist/files/prompts")), ["plain.txt"]);
    await p.write({ "dist/files/completions/plain.txt": "edited" });
    assert.equal(runCliSync(["verify"], p.dir).status, 1);
    await p.remove();
  });

  test("glob dimensions: one value per file, its name as <dim>_name", async () => {
    const p = await TempProject.create({
      "docs/alpha.md": "Alpha text\n",
      "docs/beta.md": "Beta text\n",
      "dataset.yaml": `version: 1
name: g
model: { provider: echo }
dimensions:
  doc: { glob: "docs/*.md" }
steps:
  - id: s
    generate: { prompt: "Summarise: {{ doc }}" }
output: { path: dist/x.jsonl, format: jsonl, record: { name: "{{ doc_name }}", doc: "{{ doc }}" } }
`,
    });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const rows = (await p.read("dist/x.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      rows.sort((a, b) => (a.name < b.name ? -1 : 1)),
      [
        { name: "alpha", doc: "Alpha text" },
        { name: "beta", doc: "Beta text" },
      ],
    );
    await p.remove();
  });

  test("filter and dedupe record who dropped a sample and why", async () => {
    const p = await TempProject.create({
      "dataset.yaml": `version: 1
name: f
model: { provider: echo }
dimensions:
  a: [one, two, three, four]
steps:
  - id: s
    generate: { prompt: "x" }
  - id: label
    map: { field: a, replace: [{ pattern: "^(one|two)$", with: "low" }] }
  - id: no-three
    filter: { field: a, must_not_match: three }
  - id: unique
    dedupe: { field: label }
output: { path: dist/x.jsonl, format: jsonl, record: { a: "{{ a }}" } }
`,
    });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).dropped, 2);
    const lock = (await p.read("dataset.lock"))
      .split("\n")
      .filter((l) => l.includes('"status":"dropped"'))
      .map((l) => JSON.parse(l));
    assert.deepEqual(lock.map((s) => s.reason.step).sort(), ["no-three", "unique"]);
    assert.match(lock.find((s) => s.reason.step === "unique").reason.why, /duplicates sample [0-9a-f]{16}/);
    const rows = (await p.read("dist/x.jsonl")).trim().split("\n");
    assert.equal(rows.length, 2);
    await p.remove();
  });
});

describe("run steps", () => {
  test("a module's text is a value later steps and outputs read; { drop } drops; editing the module reruns it", async () => {
    const p = await TempProject.create({
      "steps/shout.mjs": `export default function (vars) {\n  if (vars.a === "skip") return { drop: "told to skip" };\n  return vars.a.toUpperCase() + "!";\n}\n`,
      "dataset.yaml": `version: 1
name: r
model: { provider: echo }
dimensions:
  a: [hello, skip, world]
steps:
  - id: loud
    run: { module: steps/shout.mjs }
  - id: s
    generate: { prompt: "Repeat {{ loud }}" }
output: { path: dist/x.jsonl, format: jsonl, record: { loud: "{{ loud }}" } }
`,
    });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).dropped, 1);
    assert.deepEqual((await p.read("dist/x.jsonl")).trim().split("\n").sort(), ['{"loud":"HELLO!"}', '{"loud":"WORLD!"}']);
    assert.match(await p.read("dataset.lock"), /"reason":\{"step":"loud","why":"told to skip"\}/);
    assert.equal(JSON.parse(runCliSync(["build", "--json"], p.dir).stdout).requests, 0);
    await p.write({ "steps/shout.mjs": `export default (vars) => vars.a + "?";\n` });
    const again = runCliSync(["build", "--json"], p.dir);
    assert.equal(JSON.parse(again.stdout).requests, 3, "a changed module reruns its step and what reads it");
    assert.match(await p.read("dist/x.jsonl"), /"skip\?"/);
    await p.write({ "steps/shout.mjs": `export default () => { throw new Error("boom"); };\n` });
    const failed = runCliSync(["build", "--json"], p.dir);
    assert.equal(failed.status, 1);
    assert.match(JSON.parse(failed.stdout).failures[0].reason, /steps\/shout\.mjs threw: boom/);
    await p.remove();
  });
});

describe("near-duplicate dedupe", () => {
  test("method minhash drops texts that differ by a word, keeps different ones, and says which it duplicates", async () => {
    const long = Array.from({ length: 60 }, (_, i) => `word${i}`).join(" ");
    const p = await TempProject.create({
      "dataset.yaml": `version: 1
name: m
model: { provider: echo }
dimensions:
  a: ["${long}", "${long.replace("word30", "changed")}", "${long.split(" ").reverse().join(" ")}"]
steps:
  - id: near
    dedupe: { field: a, method: minhash, threshold: 0.8 }
output: { path: dist/x.jsonl, format: jsonl, record: { a: "{{ a }}" } }
`,
    });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).dropped, 1);
    const dropped = (await p.read("dataset.lock"))
      .split("\n")
      .filter((l) => l.includes('"dropped"') && l.includes('"id"'))
      .map((l) => JSON.parse(l));
    assert.match(dropped[0].reason.why, /near-duplicate of sample [0-9a-f]{16}/);
    await p.remove();
  });
});

describe("glob values", () => {
  test("editing a file's text rebuilds what prints it, even when no step reads it", async () => {
    const p = await TempProject.create({
      "docs/a.md": "first text\n",
      "dataset.yaml": `version: 1
name: g
model: { provider: echo }
dimensions:
  doc: { glob: "docs/*.md" }
  tone: [calm]
steps:
  - id: s
    generate: { prompt: "Say something {{ tone }}" }
output: { path: dist/x.jsonl, format: jsonl, record: { doc: "{{ doc }}", s: "{{ s }}" } }
`,
    });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "docs/a.md": "second text\n" });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).requests, 0);
    assert.match(await p.read("dist/x.jsonl"), /second text/);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    await p.remove();
  });
});

test("piped output is never cut: --json of 400 KB reaches a reader whole", async () => {
  const values = Array.from({ length: 1500 }, (_, i) => `value number ${i} with some words to make it longer`).join(", ");
  const p = await TempProject.create({
    "dataset.yaml": `version: 1
name: big
model: { provider: echo, name: m }
dimensions:
  v: [${values}]
steps:
  - id: s
    generate: { prompt: "{{ v }}" }
output: { path: dist/x.jsonl, prompt: "{{ v }}", completion: "{{ s }}" }
`,
  });
  try {
    // A reader slower than the CLI (jq on a big object): the pipe takes 64 KB, the rest waits.
    const { spawnSync } = await import("node:child_process");
    const { BIN, cliEnv } = await import("../helpers/cli.js");
    const r = spawnSync("sh", ["-c", `"${process.execPath}" "${BIN}" plan --json --explain --offline | (sleep 1; cat)`], {
      cwd: p.dir,
      env: cliEnv(),
      encoding: "utf8",
      maxBuffer: 1 << 26,
    });
    assert.equal(r.status, 0, r.stderr);
    assert.ok(r.stdout.length > 200_000, `${r.stdout.length} bytes`);
    assert.equal(JSON.parse(r.stdout).stale.length, 1500);
  } finally {
    await p.remove();
  }
});
