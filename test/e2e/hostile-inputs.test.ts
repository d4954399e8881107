import assert from "node:assert/strict";
import { mkdir, mkdtemp, readFile, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { runCli, runCliSync } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer } from "../server/openai-test-server.js";

/** What the bad-manifest fixtures cannot show: the opt-in that works, no request paid, no hang. */

const manifest = (dims: string, rest = "", output = `output: { path: dist/x.jsonl, format: jsonl, record: { v: "{{ v }}" } }`) =>
  `version: 1\nname: h\n${rest}model: { provider: echo }\ndimensions:\n${dims}\n${output}\n`;

describe("inputs are confined to the project, unless shared_data says otherwise", () => {
  test("a folder listed in shared_data (by ${VAR} or path) is readable by file: and glob:; without it, neither", async () => {
    const shared = await realpath(await mkdtemp(join(tmpdir(), "sb-shared-")));
    await writeFile(join(shared, "places.txt"), "Paris\nRome\n");
    await mkdir(join(shared, "docs"));
    await writeFile(join(shared, "docs", "a.txt"), "doc a");
    const dims = `  v: { file: ${shared}/places.txt }\n  d: { glob: "${shared}/docs/*.txt" }`;
    const p = await TempProject.create({ "dataset.yaml": manifest(dims) });
    try {
      const refused = runCliSync(["build"], p.dir);
      assert.equal(refused.status, 2, refused.stderr);
      assert.match(refused.stderr, /places\.txt is outside the project folder/);
      assert.match(refused.stderr, /docs\/\*\.txt reads \S+\/docs, which is outside the project folder/);
      assert.equal(await p.exists("dataset.lock"), false);

      await p.write({ "dataset.yaml": manifest(dims, "shared_data: ['${SB_SHARED}']\n") });
      const built = runCliSync(["build"], p.dir, { SB_SHARED: shared });
      assert.equal(built.status, 0, built.stderr);
      assert.deepEqual(
        (await p.read("dist/x.jsonl"))
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).v)
          .sort(),
        ["Paris", "Rome"],
      );
    } finally {
      await p.remove();
      await rm(shared, { recursive: true, force: true });
    }
  });

  test("a link that leads out of the project is refused even when its target is a file a glob matches", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(`  v: { glob: "data/*.txt" }`), "data/ok.txt": "ok" });
    try {
      await symlink("/etc/hostname", join(p.dir, "data", "host.txt"));
      const r = runCliSync(["plan"], p.dir);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /data\/host\.txt is outside the project folder \(it leads to \/etc\/hostname\)/);
    } finally {
      await p.remove();
    }
  });

  test("a symlink loop made after a build stops the next one with its position, rather than walking forever", { timeout: 30_000 }, async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(`  v: { glob: "docs/**/*.txt" }`), "docs/sub/a.txt": "a" });
    try {
      assert.equal(runCliSync(["build"], p.dir).status, 0);
      assert.match(runCliSync(["build", "--verbose"], p.dir).stderr, /up to date/);
      await symlink("..", join(p.dir, "docs", "sub", "up"));
      await symlink("..", join(p.dir, "docs", "sub", "again"));
      // Before, the up-to-date check's own glob and then the load's would not end.
      const r = await runCli(["build"], p.dir);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /dataset\.yaml:5:\d+ dimensions\.v\.glob: docs\/\*\*\/\*\.txt goes round in a circle: docs\/sub\/again leads back to docs/);
    } finally {
      await p.remove();
    }
  });
});

describe("an output that would overwrite an input is refused before any request", () => {
  test("build and plan both refuse split names landing on the manifest and the lock; nothing is requested or written", async () => {
    const server = await startTestServer();
    const yaml = `version: 1\nname: o\nmodel: { name: m, base_url: "${server.baseURL}" }\ndimensions:\n  genre: [comedy, horror]\nsteps:\n  - id: s\n    generate: { prompt: "{{ genre }}" }\noutput: { path: dataset, prompt: "{{ genre }}", completion: "{{ s }}", split: { yaml: 0.5, lock: 0.5 } }\n`;
    const p = await TempProject.create({ "dataset.yaml": yaml });
    try {
      for (const cmd of [["build"], ["plan"], ["build", "--json"]]) {
        const r = await runCli(cmd, p.dir, { OPENAI_API_KEY: "k" });
        assert.equal(r.status, 2, `${cmd.join(" ")}: ${r.stderr}`);
        assert.match(r.stderr, /split yaml of output dataset would write dataset\.yaml, which is the manifest/);
        assert.match(r.stderr, /split lock of output dataset would write dataset\.lock, which is the lock file/);
      }
      assert.equal(server.requests.length, 0);
      assert.equal(await p.read("dataset.yaml"), yaml);
      assert.equal(await p.exists("dataset.lock"), false);
    } finally {
      await server.close();
      await p.remove();
    }
  });

  test("an output inside the cache folder is refused wherever --cache-dir or SYNTHBUILD_CACHE_DIR puts it", async () => {
    const p = await TempProject.create({
      "dataset.yaml": manifest("  v: [a, b]", "", `output: { path: store/x.jsonl, format: jsonl, record: { v: "{{ v }}" } }`),
    });
    try {
      for (const [args, env] of [
        [["build", "--cache-dir", "store"], {}],
        [["plan", "--cache-dir", "store"], {}],
        [["build"], { SYNTHBUILD_CACHE_DIR: join(p.dir, "store") }],
      ] as const) {
        const r = runCliSync([...args], p.dir, env);
        assert.equal(r.status, 2, r.stderr);
        assert.match(r.stderr, /output path store\/x\.jsonl is inside store\/, the cache folder/);
      }
      assert.equal(await p.exists("store/x.jsonl"), false);
      // With the cache elsewhere, cache/ is an ordinary folder.
      await p.write({ "dataset.yaml": manifest("  v: [a, b]", "", `output: { path: cache/x.jsonl, format: jsonl, record: { v: "{{ v }}" } }`) });
      const moved = runCliSync(["build", "--cache-dir", "store"], p.dir);
      assert.equal(moved.status, 0, moved.stderr);
      assert.equal((await readFile(join(p.dir, "cache", "x.jsonl"), "utf8")).trim().split("\n").length, 2);
    } finally {
      await p.remove();
    }
  });
});

describe("pathological but valid input stays fast", () => {
  test("plan on a 1 MB value of one repeated character (was 672 s) estimates its tokens", { timeout: 60_000 }, async () => {
    const p = await TempProject.create({
      "dataset.yaml": `version: 1\nname: big\nmodel: { name: gpt-4o-mini }\ndimensions:\n  doc: { glob: "docs/*.txt" }\nsteps:\n  - id: s\n    generate: { prompt: "Summarise: {{ doc }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ doc }}", completion: "{{ s }}" }\n`,
      "docs/big.txt": "a".repeat(1_000_000),
    });
    try {
      const r = await runCli(["plan", "--json"], p.dir);
      assert.equal(r.status, 0, r.stderr);
      const tokens = JSON.parse(r.stdout).estimate.input_tokens;
      // o200k reads runs of "a" as tokens of 8: 125,000, give or take the cuts.
      assert.ok(Math.abs(tokens - 125_000) < 1_000, `${tokens} input tokens`);
    } finally {
      await p.remove();
    }
  });
});
