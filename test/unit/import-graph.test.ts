import assert from "node:assert/strict";
import { mkdir, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { ImportGraphError, importGraph } from "../../src/manifest/import-graph.js";
import { TempProject } from "../helpers/project.js";

let p: TempProject;
before(async () => {
  p = await TempProject.create({
    "steps/main.mjs": [
      `import { a } from "./a.mjs";`,
      `export * from "./reexported.mjs";`,
      `import data from "./data.json" with { type: "json" };`,
      `import { readFile } from "node:fs/promises";`,
      `import { pad } from "left-pad-esm";`,
      `import { util } from "@scope/util/sub";`,
      `import { shared } from "workspace-lib";`,
      `// import "./in-a-comment.mjs";`,
      `const s = "import './in-a-string.mjs'";`,
      `export default async (v) => (await import("./lazy.mjs")).f(a, pad, util, shared, data, import.meta.url, await import(v.x), await import(\`./t/\${v.y}.mjs\`));`,
    ].join("\n"),
    "steps/a.mjs": `import { b } from "./b.mjs";\nimport { c } from "./c.mjs";\nexport const a = b + c;\n`,
    "steps/b.mjs": `import { a } from "./a.mjs";\nimport { c } from "./c.mjs";\nexport const b = () => a + c;\n`,
    "steps/c.mjs": `export const c = 1;\n`,
    "steps/reexported.mjs": `export const r = 1;\n`,
    "steps/lazy.mjs": `export const f = () => "x";\n`,
    "steps/data.json": `{ "k": 1 }\n`,
    "node_modules/left-pad-esm/package.json": `{ "name": "left-pad-esm", "version": "2.0.1", "type": "module", "exports": "./lib/index.js" }`,
    "node_modules/left-pad-esm/lib/index.js": `import "./other.js";\nexport const pad = 1;\n`,
    "node_modules/left-pad-esm/lib/other.js": ``,
    "node_modules/@scope/util/package.json": `{ "name": "@scope/util", "version": "0.3.0", "type": "module", "exports": { "./sub": "./sub.js" } }`,
    "node_modules/@scope/util/sub.js": `export const util = 1;\n`,
    "packages/workspace-lib/package.json": `{ "name": "workspace-lib", "version": "1.0.0", "type": "module", "exports": "./index.js" }`,
    "packages/workspace-lib/index.js": `export const shared = 1;\n`,
  });
  await symlink(join(p.dir, "packages/workspace-lib"), join(p.dir, "node_modules/workspace-lib"));
});
after(() => p.remove());

test("local files transitively, once each through cycles; packages by name and version; nothing else", async () => {
  const g = await importGraph(join(p.dir, "steps/main.mjs"), p.dir);
  const rel = (f: string) => f.slice(p.dir.length + 1);
  assert.deepEqual([...g.files.keys()].map(rel).sort(), [
    "packages/workspace-lib/index.js", // linked into node_modules: the real path is local, so followed
    "steps/a.mjs",
    "steps/b.mjs",
    "steps/c.mjs",
    "steps/data.json",
    "steps/lazy.mjs",
    "steps/main.mjs",
    "steps/reexported.mjs",
  ]);
  assert.equal(rel([...g.files.keys()][0]!), "steps/main.mjs");
  assert.deepEqual([...g.packages.values()].map((x) => x.id).sort(), ["@scope/util@0.3.0", "left-pad-esm@2.0.1"]);
  assert.deepEqual([...g.packages.keys()].map(rel).sort(), ["node_modules/@scope/util/package.json", "node_modules/left-pad-esm/package.json"]);
  assert.deepEqual(g.unlexed, []);
});

test("a missing file, a missing package, a folder: errors that say where the import is", async () => {
  await p.write({ "steps/broken.mjs": `export const x = 1;\n\n  import { y } from "./nope.mjs";\n` });
  await assert.rejects(importGraph(join(p.dir, "steps/broken.mjs"), p.dir), (err: Error) => {
    assert.ok(err instanceof ImportGraphError);
    assert.equal(err.message, "steps/broken.mjs:3:3 imports './nope.mjs', which does not exist");
    return true;
  });
  await p.write({ "steps/broken.mjs": `import "not-installed";\n` });
  await assert.rejects(importGraph(join(p.dir, "steps/broken.mjs"), p.dir), /steps\/broken\.mjs:1:1 imports 'not-installed', a package that is not installed/);
  await mkdir(join(p.dir, "steps/folder"), { recursive: true });
  await p.write({ "steps/broken.mjs": `import "./folder";\n` });
  await assert.rejects(importGraph(join(p.dir, "steps/broken.mjs"), p.dir), /imports '\.\/folder', a folder/);
  await rm(join(p.dir, "steps/broken.mjs"));
});

test("a file the lexer cannot read is reported, not silently cut from the graph", async () => {
  await p.write({ "steps/bad.mjs": `import "./c.mjs";\nimport "./syntax.mjs";\n`, "steps/syntax.mjs": `export const x = { a: 1\n` });
  const g = await importGraph(join(p.dir, "steps/bad.mjs"), p.dir);
  assert.deepEqual(g.unlexed, ["steps/syntax.mjs"]);
});
