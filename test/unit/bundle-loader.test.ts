import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { Script } from "node:vm";
import { build } from "esbuild";
import { cachedDataFor, cacheFile, cacheFileOf, compileBundleFile, loadBundle } from "../../src/cli/bundle-loader.cjs";
import { REPO } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

// A bundle of two files as scripts/bundle-cli.js lays one out: cli.cjs requires vendor/v.cjs.
const CLI = `"use strict";
const v = require("./vendor/v.cjs");
exports.value = () => 41 + v.one;
exports.same = () => require("./vendor/v.cjs") === v;
exports.boom = () => {
  throw new Error("boom");
};
exports.main = async () => 0;
`;
const VENDOR = `"use strict";\nexports.one = 1;\n`;

/** Make each file's cache as the build does: compiled, run, then serialised. */
async function makeCaches(dir: string): Promise<void> {
  const scripts = new Map<string, { script: Script; source: Buffer }>();
  const m = loadBundle(join(dir, "cli.cjs"), { noCache: true, compiled: (file, script, source) => scripts.set(file, { script, source }) }) as unknown as {
    value(): number;
  };
  m.value();
  for (const [file, { script, source }] of scripts) await writeFile(cacheFileOf(file), cacheFile(source, script.createCachedData()));
}

/** Load the bundle in `dir`, saying for each file whether V8 was given a cache and took it. */
function load(dir: string) {
  const caches = new Map<string, string>();
  const m = loadBundle(join(dir, "cli.cjs"), {
    compiled: (file, script) =>
      caches.set(file.slice(dir.length + 1), script.cachedDataRejected === undefined ? "none" : script.cachedDataRejected ? "rejected" : "taken"),
  }) as unknown as { value(): number; same(): boolean; boom(): never };
  return { m, caches: Object.fromEntries(caches) };
}

describe("the bundle loader's code cache", () => {
  let p: TempProject;
  // tsx turns source maps on, which makes the loader leave the bundle to Node's require.
  const sourceMaps = process.sourceMapsEnabled;
  before(async () => {
    process.setSourceMapsEnabled(false);
    p = await TempProject.create({ "cli.cjs": CLI, "vendor/v.cjs": VENDOR });
    await makeCaches(p.dir);
  });
  after(async () => {
    process.setSourceMapsEnabled(sourceMaps);
    await p.remove();
  });

  async function copy(change?: (files: Map<string, Buffer>) => void): Promise<TempProject> {
    const files = new Map<string, Buffer>();
    for (const f of ["cli.cjs", "cli.cjs.cache", "vendor/v.cjs", "vendor/v.cjs.cache"]) files.set(f, await readFile(join(p.dir, f)));
    change?.(files);
    const q = await TempProject.create();
    await mkdir(join(q.dir, "vendor"));
    for (const [f, b] of files) await writeFile(join(q.dir, f), b);
    return q;
  }

  test("a cache made by the build is taken, for cli.cjs and each vendor file it requires", () => {
    const { m, caches } = load(p.dir);
    assert.equal(m.value(), 42);
    assert.deepEqual(caches, { "cli.cjs": "taken", "vendor/v.cjs": "taken" });
  });

  test("each file is evaluated once, as require would", () => {
    assert.equal(load(p.dir).m.same(), true);
  });

  test("the bundle changed in place (same length, as V8 alone would not notice): its old cache is not used, the new code runs", async () => {
    const q = await copy((f) => f.set("cli.cjs", Buffer.from(CLI.replace("41 + v.one", "43 + v.one"))));
    try {
      const { m, caches } = load(q.dir);
      assert.equal(m.value(), 44);
      assert.deepEqual(caches, { "cli.cjs": "none", "vendor/v.cjs": "taken" });
    } finally {
      await q.remove();
    }
  });

  test("a damaged cache (V8 does not check its data, and may crash on it) is not given to V8", async () => {
    const q = await copy((f) => {
      const c = f.get("cli.cjs.cache")!;
      c[c.length - 10]! ^= 0xff;
    });
    try {
      const { m, caches } = load(q.dir);
      assert.equal(m.value(), 42);
      assert.equal(caches["cli.cjs"], "none");
    } finally {
      await q.remove();
    }
  });

  test("a cache made by another Node is not used, nor a truncated or an empty one, nor none", async () => {
    const cases: [string, (c: Buffer) => Buffer | undefined][] = [
      ["another Node", (c) => Buffer.from(c.toString("latin1").replace(/node-v[^\n]+/, "node-v99.0.0-x64"), "latin1")],
      ["truncated", (c) => c.subarray(0, 100)],
      ["empty", () => Buffer.alloc(0)],
      ["none", () => undefined],
    ];
    for (const [what, change] of cases) {
      const q = await copy((f) => {
        const c = change(f.get("cli.cjs.cache")!);
        if (c) f.set("cli.cjs.cache", c);
        else f.delete("cli.cjs.cache");
      });
      try {
        const { m, caches } = load(q.dir);
        assert.equal(m.value(), 42, what);
        assert.equal(caches["cli.cjs"], "none", what);
      } finally {
        await q.remove();
      }
    }
  });

  test("a cache V8 rejects (made from another source) costs only the compile: the right code runs", async () => {
    const other = Buffer.from(`${CLI}\n// a longer file\n`);
    const source = await readFile(join(p.dir, "cli.cjs"));
    const data = compileBundleFile("x.cjs", other).createCachedData();
    // Our header vouches for this source (as a hand-made cache could); V8 still sees the length differ.
    const q = await copy((f) => f.set("cli.cjs.cache", cacheFile(source, data)));
    try {
      assert.ok(cachedDataFor(source, cacheFile(source, data)));
      const { m, caches } = load(q.dir);
      assert.equal(m.value(), 42);
      assert.equal(caches["cli.cjs"], "rejected");
    } finally {
      await q.remove();
    }
  });

  test("nothing is written beside the bundle, whatever the cache's state (a package may be read-only or shared)", async () => {
    const q = await copy((f) => {
      f.delete("cli.cjs.cache");
      f.set("cli.cjs", Buffer.from(CLI.replace("41", "40")));
    });
    try {
      const list = async () => [...(await readdir(q.dir, { recursive: true }))].sort();
      const before = await list();
      load(q.dir).m.value();
      assert.deepEqual(await list(), before);
    } finally {
      await q.remove();
    }
  });

  test("stack traces name the bundle file, line and column as they are on disk", () => {
    const { m } = load(p.dir);
    assert.throws(
      () => m.boom(),
      (e: Error) => e.stack!.includes(`${join(p.dir, "cli.cjs")}:6:9`),
    );
  });
});

test("under --enable-source-maps the bundle is required by Node, so stack traces map back to the sources", async () => {
  const p = await TempProject.create();
  try {
    await build({
      stdin: { contents: "export function boom(): never {\n  throw new Error('boom');\n}\n", sourcefile: "boom.ts", loader: "ts", resolveDir: p.dir },
      outfile: join(p.dir, "cli.cjs"),
      format: "cjs",
      sourcemap: "linked",
      logLevel: "warning",
    });
    const loader = join(REPO, "lib", "cli", "bundle-loader.cjs");
    const script = `try { require(${JSON.stringify(loader)}).loadBundle(${JSON.stringify(join(p.dir, "cli.cjs"))}).boom() } catch (e) { console.log(e.stack) }`;
    const mapped = spawnSync(process.execPath, ["--enable-source-maps", "-e", script], { encoding: "utf8" });
    assert.match(mapped.stdout, /boom\.ts:2:9/, mapped.stdout + mapped.stderr);
    const plain = spawnSync(process.execPath, ["-e", script], { encoding: "utf8" });
    assert.match(plain.stdout, /cli\.cjs:\d+:\d+/, plain.stdout + plain.stderr);
  } finally {
    await p.remove();
  }
});
