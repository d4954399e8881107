import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { cp, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { cliEnv, REPO } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

const LOADER = join(REPO, "lib", "cli", "bundle-loader.cjs");

/**
 * Run the CLI from the bundle in `bundle` as bin/synthbuild.js does, in a plain `node` (no flags:
 * what a user runs), and say which bundle files it compiled, when, and whether V8 took each one's
 * cache. Asynchronous: a test server in this process may have to answer it.
 */
function run(bundle: string, args: string[], cwd: string, env: Record<string, string> = {}) {
  const script = `
    const { relative } = require("node:path");
    const caches = {};
    const cli = require(${JSON.stringify(LOADER)}).loadBundle(${JSON.stringify(join(bundle, "cli.cjs"))}, {
      compiled: (file, s) => (caches[relative(${JSON.stringify(bundle)}, file)] = { at: Date.now(), cache: s.cachedDataRejected === undefined ? "none" : s.cachedDataRejected ? "rejected" : "taken" }),
    });
    cli.main(${JSON.stringify(args)}).then((code) => { process.stderr.write("\\n" + JSON.stringify(caches)); process.exit(code); });`;
  return new Promise<{ status: number | null; stdout: string; stderr: string; caches: Record<string, string>; at: Record<string, number> }>(
    (resolve, reject) => {
      // No NODE_OPTIONS of the machine running the tests: V8 flags in it would make V8 reject every cache.
      const child = spawn(process.execPath, ["-e", script], { cwd, env: cliEnv({ ...env, NODE_OPTIONS: "" }) });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (d) => (stdout += d));
      child.stderr.on("data", (d) => (stderr += d));
      child.on("error", reject);
      child.on("close", (status) => {
        const compiled = JSON.parse(stderr.trimEnd().split("\n").at(-1)!) as Record<string, { at: number; cache: string }>;
        const caches = Object.fromEntries(Object.entries(compiled).map(([f, c]) => [f, c.cache]));
        const at = Object.fromEntries(Object.entries(compiled).map(([f, c]) => [f, c.at]));
        resolve({ status, stdout, stderr, caches, at });
      });
    },
  );
}

describe("start-up: the bundle's code caches", () => {
  let p: TempProject;
  before(async () => {
    p = await TempProject.example();
  });
  after(() => p.remove());

  test("--help compiles cli.cjs alone, with the cache npm run build made: nothing in vendor/ is on every command's path", async () => {
    const r = await run(join(REPO, "lib", "bundle"), ["--help"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^Usage: synthbuild/);
    assert.deepEqual(r.caches, { "cli.cjs": "taken" });
  });

  test("plan loads the tokenizer and the price book from vendor/, each with its cache", async () => {
    const r = await run(join(REPO, "lib", "bundle"), ["plan"], p.dir);
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
        const shipped = await run(join(REPO, "lib", "bundle"), args, p.dir);
        const damaged = await run(copy.dir, args, p.dir);
        assert.equal(damaged.status, 0, damaged.stderr);
        assert.equal(damaged.stdout, shipped.stdout);
        assert.equal(damaged.caches["cli.cjs"], "none");
      }
    } finally {
      await copy.remove();
    }
  });
});

describe("start-up: the price book waits for an answer to price", () => {
  let server: TestServer;
  let p: TempProject;
  before(async () => {
    server = await startTestServer({ latencyMs: 20 });
    p = await TempProject.example();
  });
  after(async () => {
    await server.close();
    await p.remove();
  });

  test("a cold build sends its first request before loading it; a rebuild that requests nothing never loads it", async () => {
    const env = { OPENAI_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-test" };
    const cold = await run(join(REPO, "lib", "bundle"), ["build"], p.dir, env);
    assert.equal(cold.status, 0, cold.stderr);
    assert.match(cold.stderr, /built 90 samples: 180 requests.*\$0\.\d+/);
    const first = Math.min(...server.requests.map((r) => r.at));
    assert.ok(cold.at["vendor/pydantic-genai-prices.cjs"]! >= first, "the price book was loaded before the first request arrived");
    await rm(join(p.dir, "dist"), { recursive: true });
    const cached = await run(join(REPO, "lib", "bundle"), ["build"], p.dir, env);
    assert.equal(cached.status, 0, cached.stderr);
    assert.match(cached.stderr, /0 requests, 180 cached/);
    assert.equal(cached.caches["vendor/pydantic-genai-prices.cjs"], undefined);
  });

  test("once the scan's requests are out, it loads while they wait, not on the first answer's path", async () => {
    const slow = await startTestServer({ latencyMs: 500 });
    const q = await TempProject.example();
    try {
      const r = await run(join(REPO, "lib", "bundle"), ["build", "--limit", "1"], q.dir, { OPENAI_BASE_URL: slow.baseURL, OPENAI_API_KEY: "sk-test" });
      assert.equal(r.status, 0, r.stderr);
      const first = Math.min(...slow.requests.map((x) => x.at));
      const loaded = r.at["vendor/pydantic-genai-prices.cjs"]!;
      assert.ok(loaded >= first && loaded < first + 500, `loaded ${loaded - first} ms after the first request, whose answer took 500 ms`);
    } finally {
      await slow.close();
      await q.remove();
    }
  });
});
