import assert from "node:assert/strict";
import { readdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { parse } from "yaml";
import { AtomicFileWriter } from "../../src/util/fs-atomic.js";
import { hash64, initHashing } from "../../src/util/hash.js";
import { runCliSync } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

describe("init in your own project", () => {
  test("an empty folder gets a .gitignore that keeps cache/ out of git", async () => {
    const p = await TempProject.create();
    const r = runCliSync(["init"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await p.read(".gitignore"), "cache/\n");
    assert.match(r.stderr, /wrote .*\.gitignore/);
    await p.remove();
  });

  test("an existing .gitignore gets the line appended once, and never twice", async () => {
    const p = await TempProject.create({ ".gitignore": "node_modules/\n*.log" });
    assert.equal(runCliSync(["init"], p.dir).status, 0);
    assert.equal(await p.read(".gitignore"), "node_modules/\n*.log\ncache/\n");
    assert.equal(runCliSync(["init", "--force"], p.dir).status, 0);
    assert.equal(await p.read(".gitignore"), "node_modules/\n*.log\ncache/\n");
    await p.remove();
  });

  test("a .gitignore that already names the cache in another spelling is left alone", async () => {
    const p = await TempProject.create({ ".gitignore": "/cache\ndist/\n" });
    const r = runCliSync(["init"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await p.read(".gitignore"), "/cache\ndist/\n");
    assert.doesNotMatch(r.stderr, /\.gitignore/);
    await p.remove();
  });
});

const manifest = (output: string, values = "[comedy, horror]") => `version: 1
name: shipped
model: { provider: echo }
dimensions:
  genre: ${values}
steps:
  - id: story
    generate: { prompt: "Write a {{ genre }} story." }
${output}
`;
const files = (path: string, extra = "") => `output: { path: ${path}, format: files, prompt: "{{ genre }}", completion: "{{ story }}"${extra} }`;
const list = (p: TempProject, dir: string) =>
  readdir(join(p.dir, dir)).then(
    (f) => f.sort(),
    () => undefined,
  );

describe("format: files is the tutorial's layout", () => {
  test("path: . writes prompts/ and completions/ at the project root, and nothing over the manifest, lock or cache", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(files(".")) });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).outputs, [{ path: ".", rows: 2 }]);
    assert.deepEqual(await list(p, "prompts"), ["comedy.txt", "horror.txt"]);
    assert.deepEqual(await list(p, "completions"), ["comedy.txt", "horror.txt"]);
    assert.equal(await p.read("prompts/horror.txt"), "horror");
    assert.deepEqual(await list(p, "."), ["cache", "completions", "dataset.lock", "dataset.yaml", "prompts"]);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    await p.remove();
  });

  test("path: . with a split writes train/ and validation/ at the root", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(files(".", ", split: { train: 0.5, validation: 0.5 }"), "[a, b, c, d, e, f]") });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(
      JSON.parse(r.stdout).outputs.map((o: { path: string }) => o.path),
      ["train", "validation"],
    );
    assert.ok((await list(p, "train/prompts"))?.length, "no train/prompts");
    await p.remove();
  });

  test("path: . never prunes a prompt file that is an input", async () => {
    const p = await TempProject.create({
      "prompts/seed.txt": "comedy\n",
      "dataset.yaml": manifest(files("."), "{ file: prompts/seed.txt }"),
    });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /dataset\.yaml:\d+:\d+ output\.path: output \. writes into prompts\/, where prompts\/seed\.txt is the values file/);
    assert.equal(await p.read("prompts/seed.txt"), "comedy\n");
    await p.remove();
  });

  test("a path that names prompts/ itself is refused with a hint, not nested", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(files("prompts")) });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /dataset\.yaml:9:17 output\.path: output path prompts would write prompts\/prompts\//);
    assert.match(r.stderr, /hint: .*path: \./);
    assert.equal(await list(p, "prompts"), undefined);
    await p.remove();
  });

  test("a name that already ends in .txt is not doubled", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(files("dist/f", ', name: "{{ genre }}.txt"')) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.deepEqual(await list(p, "dist/f/prompts"), ["comedy.txt", "horror.txt"]);
    await p.remove();
  });

  test("renaming a files output removes the old folders it wrote, unless someone changed them", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(files("dist/old")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dataset.yaml": manifest(files("dist/new")) });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /removed dist\/old: the manifest no longer writes it/);
    assert.deepEqual(await list(p, "dist"), ["new"]);
    await p.write({ "dataset.yaml": manifest(files("dist/third")), "dist/new/completions/comedy.txt": "my edit" });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.deepEqual(await list(p, "dist"), ["new", "third"]);
    assert.equal(await p.read("dist/new/completions/comedy.txt"), "my edit");
    await p.remove();
  });

  test("a renamed files output at the project root leaves the root and its other files", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(files(".")), "notes.txt": "mine" });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dataset.yaml": manifest(files("dist")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.deepEqual(await list(p, "."), ["cache", "dataset.lock", "dataset.yaml", "dist", "notes.txt"]);
    await p.remove();
  });
});

const chat = (path: string, extra = "") =>
  `output:\n  - { path: ${path}, format: prompt-completion, prompt: "{{ genre }}", completion: "{{ story }}", split: { train: 0.5, test: 0.5 }${extra} }`;

describe("dist/README.md, the dataset card", () => {
  test("build writes it beside the JSONL, verify checks it, and a no-op leaves it byte for byte", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(chat("dist/stories.jsonl"), "[a, b, c, d, e, f]") });
    const r = runCliSync(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    const card = await p.read("dist/README.md");
    assert.match(card, /^---\n# synthbuild-card [0-9a-f]+: /);
    assert.match(card, /\n {2}data_files:\n {2}- split: "train"\n {4}path: "stories\.train\.jsonl"\n {2}- split: "test"\n {4}path: "stories\.test\.jsonl"\n/);
    const test = JSON.parse(r.stdout).outputs.find((o: { path: string }) => o.path === "dist/stories.test.jsonl");
    assert.match(card, new RegExp(`\\| default \\| test \\| \`stories\\.test\\.jsonl\` \\| prompt-completion \\| ${test.rows} \\|`));
    assert.match(card, /step `story` \(generate\): model `echo`/);
    await initHashing();
    assert.ok(card.includes(`\`dataset.lock\` hash \`${hash64(await p.read("dataset.lock"))}\``), "the card names the lock it describes");
    assert.doesNotMatch(card, /\d{4}-\d{2}-\d{2}|\d{2}:\d{2}/, "a card with a date or time is not deterministic");
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    const again = runCliSync(["build", "--verbose"], p.dir);
    assert.match(again.stderr, /up to date/);
    assert.equal(await p.read("dist/README.md"), card);
    await p.remove();
  });

  test("deleted or edited, it is noticed by the no-op check and verify, and the next build writes it again", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(chat("dist/stories.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const card = await p.read("dist/README.md");
    for (const change of [() => p.write({ "dist/README.md": card.replace("synthetic dataset", "dataset") }), () => rm(join(p.dir, "dist/README.md"))]) {
      await change();
      const v = runCliSync(["verify"], p.dir);
      assert.equal(v.status, 1);
      assert.match(v.stderr, /dist\/README\.md (is not the dataset card the lock describes|\(the dataset card\) is missing)/);
      const b = runCliSync(["build", "--verbose"], p.dir);
      assert.equal(b.status, 0, b.stderr);
      assert.match(b.stderr, /building: dist\/README\.md/);
      assert.equal(await p.read("dist/README.md"), card);
    }
    await p.remove();
  });

  test("a README.md of the user's own is kept, with a warning, and does not make every build a rebuild", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(chat("dist/stories.jsonl")), "dist/README.md": "# My card\n" });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /dist\/README\.md is not synthbuild's dataset card: kept as it is/);
    assert.equal(await p.read("dist/README.md"), "# My card\n");
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    assert.match(runCliSync(["build", "--verbose"], p.dir).stderr, /up to date/);
    // Our card with its marker line deleted is the user's too.
    await rm(join(p.dir, "dist/README.md"));
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const mine = (await p.read("dist/README.md")).replace(/^---\n# synthbuild-card .*\n/, "---\n");
    await p.write({ "dist/README.md": mine });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.equal(await p.read("dist/README.md"), mine);
    await p.remove();
  });

  test("card: false writes none and removes the one an earlier build wrote; a moved output moves it", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(chat("dist/stories.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dataset.yaml": manifest(chat("dist/stories.jsonl", ", card: false")) });
    const off = runCliSync(["build"], p.dir);
    assert.equal(off.status, 0, off.stderr);
    assert.match(off.stderr, /removed dist\/README\.md: the manifest no longer writes a dataset card there/);
    assert.equal(await p.exists("dist/README.md"), false);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);
    await p.write({ "dataset.yaml": manifest(chat("dist/stories.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    await p.write({ "dataset.yaml": manifest(chat("release/stories.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.equal(await p.exists("dist/README.md"), false);
    assert.match(await p.read("release/README.md"), /path: "stories\.train\.jsonl"/);
    await p.remove();
  });

  test("files outputs are never in it: alone they get no card, beside JSONL they are left out", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(files("dist/pairs")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.equal(await p.exists("dist/README.md"), false);
    await p.write({
      "dataset.yaml": manifest(`${chat("dist/stories.jsonl")}\n  - { path: dist/pairs, format: files, prompt: "{{ genre }}", completion: "{{ story }}" }`),
    });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const card = await p.read("dist/README.md");
    assert.doesNotMatch(card, /pairs/);
    await p.write({ "dataset.yaml": manifest(files("dist/pairs", ", card: true")) });
    const bad = runCliSync(["build"], p.dir);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /dataset\.yaml:9:\d+ output\.card: card: is for JSONL formats/);
    assert.match(bad.stderr, /hint: /);
    await p.remove();
  });

  test("the temp file a build killed while writing the card left is removed by the next build", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(chat("dist/stories.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const w = await AtomicFileWriter.open(join(p.dir, "dist/README.md"));
    await w.write("half a card");
    // As the killed build did before it wrote anything: the stamp goes first.
    await rm(join(p.dir, "cache/state/stamps"), { recursive: true });
    const r = runCliSync(["build"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /removed 1 temp file\(s\) an interrupted build left: dist\/README\.md\.tmp-/);
    assert.deepEqual(await list(p, "dist"), ["README.md", "stories.test.jsonl", "stories.train.jsonl"]);
    await p.remove();
  });

  const licensed = (license: string | undefined) =>
    manifest(chat("dist/stories.jsonl"), "[a, b, c, d, e, f]").replace(
      "dimensions:",
      license === undefined ? "dimensions:" : `card: { license: ${license} }\ndimensions:`,
    );
  const licenseOf = async (p: TempProject) => (parse((await p.read("dist/README.md")).match(/^---\n([\s\S]*?)\n---\n/)![1]!) as { license: string }).license;

  test("card: { license } is the card's license; changed, the next build rewrites the card alone (no request, the lock as it was) and verify passes", async () => {
    const p = await TempProject.create({ "dataset.yaml": licensed("mit") });
    const first = runCliSync(["build", "--json"], p.dir);
    assert.equal(first.status, 0, first.stderr);
    assert.ok(JSON.parse(first.stdout).requests > 0);
    assert.equal(await licenseOf(p), "mit");
    assert.doesNotMatch(await p.read("dist/README.md"), /placeholder/);
    const lock = await p.read("dataset.lock");
    const data = await p.read("dist/stories.train.jsonl");

    await p.write({ "dataset.yaml": licensed("apache-2.0") });
    // Not yet built: the card on disk is not the one the manifest and lock describe.
    const stale = runCliSync(["verify"], p.dir);
    assert.equal(stale.status, 1);
    assert.match(stale.stderr, /dist\/README\.md is not the dataset card the lock describes: `synthbuild build` writes it anew/);
    const b = runCliSync(["build", "--json", "--verbose"], p.dir);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(JSON.parse(b.stdout).requests, 0);
    assert.match(b.stderr, /building: dist\/README\.md is not the dataset card the lock describes/);
    assert.doesNotMatch(b.stderr, /warning/, "our own untouched card is rewritten without a word");
    assert.equal(await licenseOf(p), "apache-2.0");
    // No sample id, nonce, key or recipe moved: the lock is byte for byte the one before, and so is the data.
    assert.equal(await p.read("dataset.lock"), lock);
    assert.equal(await p.read("dist/stories.train.jsonl"), data);
    await initHashing();
    assert.ok((await p.read("dist/README.md")).includes(`hash \`${hash64(lock)}\``));
    const v = runCliSync(["verify"], p.dir);
    assert.equal(v.status, 0, v.stderr);
    assert.match(runCliSync(["build", "--verbose"], p.dir).stderr, /up to date: nothing the last complete build's stamp lists has changed/);

    // The release gate takes a license change too: the lock it checks against has not moved.
    await p.write({ "dataset.yaml": licensed("cc-by-4.0") });
    const frozen = runCliSync(["build", "--frozen", "--json"], p.dir);
    assert.equal(frozen.status, 0, frozen.stderr);
    assert.equal(JSON.parse(frozen.stdout).requests, 0);
    assert.equal(await licenseOf(p), "cc-by-4.0");
    assert.equal(await p.read("dataset.lock"), lock);
    assert.equal(runCliSync(["verify"], p.dir).status, 0);

    // Unset again, it is the placeholder again.
    await p.write({ "dataset.yaml": licensed(undefined) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    assert.equal(await licenseOf(p), "other");
    assert.match(await p.read("dist/README.md"), /license: other # placeholder: set card\.license in the manifest/);
    await p.remove();
  });

  test("a card edited by hand is written anew with a warning, which names a license written into it and the key that keeps it", async () => {
    const p = await TempProject.create({ "dataset.yaml": licensed(undefined) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const card = await p.read("dist/README.md");
    await p.write({ "dist/README.md": card.replace(/^license: other .*$/m, "license: mit") });
    const v = runCliSync(["verify"], p.dir);
    assert.equal(v.status, 1);
    assert.match(v.stderr, /dist\/README\.md is not the dataset card the lock describes \(it was edited since synthbuild wrote it\)/);
    const b = runCliSync(["build"], p.dir);
    assert.equal(b.status, 0, b.stderr);
    assert.match(
      b.stderr,
      /warning: dist\/README\.md had been edited since synthbuild wrote it: written anew, and the edits are gone; to keep its license mit, set card: \{ license: mit \} in dataset\.yaml \(a card whose '# synthbuild-card' line is deleted is kept as yours, and never updated again\)/,
    );
    assert.equal(await p.read("dist/README.md"), card);
    assert.doesNotMatch(runCliSync(["build"], p.dir).stderr, /warning/, "said once, by the build that wrote over it");

    // The key it names keeps the license; an edit elsewhere is warned of without a license to keep.
    await p.write({ "dataset.yaml": licensed("mit") });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const mine = await p.read("dist/README.md");
    // Written as the Hub would not take it, it is named as written, with the id that keeps it.
    await p.write({ "dist/README.md": mine.replace(/^license: "mit"$/m, "license: Apache 2.0") });
    assert.match(runCliSync(["build"], p.dir).stderr, /to keep its license Apache 2\.0, set card: \{ license: apache-2\.0 \} in dataset\.yaml/);
    await p.write({ "dist/README.md": mine.replace("## Files", "## My files") });
    const again = runCliSync(["build"], p.dir);
    assert.equal(again.status, 0, again.stderr);
    assert.match(again.stderr, /warning: dist\/README\.md had been edited since synthbuild wrote it: written anew, and the edits are gone \(/);
    assert.equal(await p.read("dist/README.md"), mine);
    assert.equal(await licenseOf(p), "mit");
    await p.remove();
  });

  test("build --frozen on a clone without dist/ writes the card too", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(chat("dist/stories.jsonl")) });
    assert.equal(runCliSync(["build"], p.dir).status, 0);
    const card = await p.read("dist/README.md");
    await rm(join(p.dir, "dist"), { recursive: true });
    const r = runCliSync(["build", "--frozen"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(await p.read("dist/README.md"), card);
    await p.remove();
  });
});
