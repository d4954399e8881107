import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cp, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cliEnv, REPO } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

const LOADER = join(REPO, "lib", "cli", "bundle-loader.cjs");

/**
 * Run the CLI from the bundle in `bundle` as bin/synthbuild.js does, in a plain `node` (no flags:
 * what a user runs), and say which bundle files it compiled and whether V8 took each one's cache.
 */
function run(bundle: string, args: string[], cwd: string) {
  const script = `
    const { relative } = require("node:path");
    const caches = {};
    const cli = require(${JSON.stringify(LOADER)}).loadBundle(${JSON.stringify(join(bundle, "cli.cjs"))}, {
      compiled: (file, s) => (caches[relative(${JSON.stringify(bundle)}, file)] = s.cachedDataRejected === undefined ? "none" : s.cachedDataRejected ? "rejected" : "taken"),
    });
    cli.main(${JSON.stringify(args)}).then((code) => { process.stderr.write("\\n" + JSON.stringify(caches)); process.exit(code); });`;
  const r = spawnSync(process.execPath, ["-e", script], { cwd, env: cliEnv(), encoding: "utf8" });
  const last = r.stderr.trimEnd().split("\n").at(-1)!;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, caches: JSON.parse(last) as Record<string, string> };
}

describe("start-up: the bundle's code caches", () => {
  let p: TempProject;
  before(async () => {
    p = await TempProject.create();
    await cp(join(REPO, "dataset.yaml"), join(p.dir, "dataset.yaml"));
    await cp(join(REPO, "data"), join(p.dir, "data"), { recursive: true });
  });
  after(() => p.remove());

  test("--help compiles cli.cjs alone, with the cache npm run build made: nothing in vendor/ is on every command's path", () => {
    const r = run(join(REPO, "lib", "bundle"), ["--help"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: synthbuild/);
    assert.deepEqual(r.caches, { "cli.cjs": "taken" });
  });

  test("plan loads the tokenizer and the price book from vendor/, each with its cache", () => {
    const r = run(join(REPO, "lib", "bundle"), ["plan"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.caches, { "cli.cjs": "taken", "vendor/gpt-tokenizer.cjs": "taken", "vendor/pydantic-genai-prices.cjs": "taken" });
  });

  test("a damaged or missing cache is not used and changes nothing but the time: the same help, the same plan", async () => {
    const copy = await TempProject.create();
    try {
      await cp(join(REPO, "lib", "bundle"), copy.dir, { recursive: true });
      const cache = join(copy.dir, "cli.cjs.cache");
      const bytes = await readFile(cache);
      bytes[bytes.length >> 1]! ^= 0xff;
      await writeFile(cache, bytes);
      await writeFile(join(copy.dir, "vendor", "gpt-tokenizer.cjs.cache"), "");
      for (const args of [["--help"], ["plan", "--json"]]) {
        const shipped = run(join(REPO, "lib", "bundle"), args, p.dir);
        const damaged = run(copy.dir, args, p.dir);
        assert.equal(damaged.status, 0, damaged.stderr);
        assert.equal(damaged.stdout, shipped.stdout);
        assert.equal(damaged.caches["cli.cjs"], "none");
      }
    } finally {
      await copy.remove();
    }
  });
});
