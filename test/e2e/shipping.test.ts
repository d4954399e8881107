import assert from "node:assert/strict";
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
