import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
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
