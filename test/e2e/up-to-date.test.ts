import assert from "node:assert/strict";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { mkdtemp, readdir, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { alterPacked, removeAnswers } from "../helpers/cache-files.js";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer } from "../server/openai-test-server.js";

/**
 * The up-to-date stamp lets a no-op build skip reading the manifest. It must never make a build
 * that has work to do (or a dist/ to restore) into a no-op. Each case changes one thing the
 * dataset depends on and checks the build notices (`build --verbose` says which way it decided).
 */
const manifest = () => `version: 1
name: stamp
model: { provider: echo, name: m }
dimensions:
  genre: { file: genres.txt }
  doc: { glob: "docs/*.md" }
steps:
  - id: s
    generate:
      prompt: "{{ genre }} {{ doc }}"
      model:
        params:
          max_tokens: \${MAX_TOKENS:-8}
  - id: tag
    run: { module: tag.mjs }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ genre }} {{ doc_name }}", completion: "{{ tag }}" }
`;

const files = {
  "dataset.yaml": manifest(),
  "genres.txt": "sf\nromance\n",
  "docs/a.md": "alpha",
  "docs/b.md": "beta",
  "tag.mjs": `import { suffix } from "./suffix.mjs";\nexport default (v) => v.s + suffix;\n`,
  "suffix.mjs": `export const suffix = " #1";\n`,
};

// On a filesystem that keeps whole-second times, a build writes no stamp until its files are
// 2 s old (see ambiguous() in up-to-date.ts), so nothing here would be decided by one.
const probeDir = mkdtempSync(join(tmpdir(), "synthbuild-mtime-"));
writeFileSync(join(probeDir, "probe"), "");
const coarseTimes = statSync(join(probeDir, "probe")).mtimeMs % 1000 === 0;
rmSync(probeDir, { recursive: true });

describe("the up-to-date stamp", { skip: coarseTimes && "this filesystem keeps whole-second file times" }, () => {
  let p: TempProject;
  const STAMP = /up to date: nothing the last complete build's stamp lists has changed/;
  const build = async (env: Record<string, string> = {}) => {
    const r = await runCli(["build", "--json", "--verbose"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    return { ...(JSON.parse(r.stdout) as { samples: number; requests: number; cached: number; outputs: { rows: number }[] }), stderr: r.stderr };
  };
  /** The build reads the manifest (the stamp does not hold) and leaves a dataset verify accepts. */
  const rebuilt = async (requests: number, env: Record<string, string> = {}) => {
    const r = await build(env);
    assert.equal(r.requests, requests, "requests");
    assert.doesNotMatch(r.stderr, STAMP, "the manifest was read, not skipped");
    assert.match(r.stderr, /reading the manifest: /);
    const v = await runCli(["verify"], p.dir, env);
    assert.equal(v.status, 0, v.stderr);
    return r;
  };
  const skipped = async (env: Record<string, string> = {}) => {
    const r = await build(env);
    assert.equal(r.requests, 0);
    assert.match(r.stderr, STAMP, "a no-op decided by the stamp");
    return r;
  };

  before(async () => {
    p = await TempProject.create(files);
    const first = await build();
    assert.equal(first.requests, 4);
  });
  after(() => p.remove());

  test("a no-op is decided by the stamp, with the same summary as the full check", async () => {
    const r = await skipped();
    assert.deepEqual({ samples: r.samples, cached: r.cached, rows: r.outputs[0]!.rows }, { samples: 4, cached: 4, rows: 4 });
    // Touching the manifest without changing it is still a no-op.
    const now = new Date();
    await utimes(join(p.dir, "dataset.yaml"), now, now);
    await skipped();
    // Without a stamp, the full check decides the no-op, and stamps it for next time.
    await rm(join(p.dir, "cache/state/stamps"), { recursive: true });
    const full = await rebuilt(0);
    assert.match(full.stderr, /up to date: every sample's recipe matches the lock/);
    await skipped();
  });

  test("an edited values file, a new globbed file, an edited globbed file, an edited run module", async () => {
    await p.write({ "genres.txt": "sf\nromance\nnoir\n" });
    await rebuilt(2);
    await skipped();
    await p.write({ "docs/c.md": "gamma" });
    await rebuilt(3);
    await p.write({ "docs/c.md": "gamma, edited" });
    await rebuilt(3);
    await p.write({ "suffix.mjs": files["suffix.mjs"].replace("#1", "#2"), "tag.mjs": `${files["tag.mjs"]}// edited\n` });
    await rebuilt(0);
    assert.match(await p.read("dist/out.jsonl"), /#2/);
    await skipped();
  });

  test("an environment variable the manifest reads", async () => {
    await rebuilt(9, { MAX_TOKENS: "9" });
    await skipped({ MAX_TOKENS: "9" });
    await rebuilt(0, { MAX_TOKENS: "8" });
    await skipped({ MAX_TOKENS: "8" });
  });

  test("dist/ edited or removed by hand, a lock edited or removed, a cache entry removed", async () => {
    const good = await p.snapshot();
    await p.write({ "dist/out.jsonl": "tampered\n" });
    await rebuilt(0);
    assert.deepEqual(await p.snapshot(), good);
    await rm(join(p.dir, "dist"), { recursive: true });
    await rebuilt(0);
    assert.deepEqual(await p.snapshot(), good);

    const lock = await p.read("dataset.lock");
    await p.write({ "dataset.lock": lock.replace('"name":"stamp"', '"name":"other"') });
    await rebuilt(0);
    assert.equal(await p.read("dataset.lock"), lock);
    await rm(join(p.dir, "dataset.lock"));
    await rebuilt(0);
    assert.equal(await p.read("dataset.lock"), lock);

    const key = (JSON.parse(lock.split("\n").find((l) => l.startsWith('{"id"'))!) as { steps: { s: { key: string } } }).steps.s.key;
    await removeAnswers(join(p.dir, "cache"), [key]);
    await rebuilt(1);
    await skipped();
  });

  test("dist/ edited in place with its size and mtime put back (cp -p, touch -r) is still repaired", async () => {
    const good = await p.snapshot();
    const path = join(p.dir, "dist/out.jsonl");
    // A whole-second mtime, long past, so that it can be put back exactly; restamped with it.
    await utimes(path, 1_700_000_000, 1_700_000_000);
    await rebuilt(0);
    await skipped();
    await p.write({ "dist/out.jsonl": good["dist/out.jsonl"]!.replace("sf", "SF") });
    await utimes(path, 1_700_000_000, 1_700_000_000);
    assert.equal((await stat(path)).mtimeMs, 1_700_000_000_000);
    await rebuilt(0);
    assert.deepEqual(await p.snapshot(), good);
  });

  test("a run module that no longer loads (an import gone) is reported, not skipped", async () => {
    await skipped();
    await rm(join(p.dir, "suffix.mjs"));
    const r = await runCli(["build"], p.dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /tag\.mjs failed to load/);
    await p.write({ "suffix.mjs": files["suffix.mjs"] });
  });

  test("a warning from a rebuild (a corrupt cache entry) is not repeated by later no-ops", async () => {
    const lock = await p.read("dataset.lock");
    const key = (JSON.parse(lock.split("\n").find((l) => l.startsWith('{"id"'))!) as { steps: { s: { key: string } } }).steps.s.key;
    await alterPacked(join(p.dir, "cache"), key, '"request":', '"requesT":');
    // An output edit makes the build read every answer (and so find the corrupt one).
    const yaml = await p.read("dataset.yaml");
    await p.write({ "dataset.yaml": yaml.replace('completion: "{{ tag }}"', 'completion: "{{ tag }}!"') });
    const repaired = await rebuilt(1);
    assert.match(repaired.stderr, /was corrupt/);
    const again = await skipped();
    assert.doesNotMatch(again.stderr, /corrupt/);
    await p.write({ "dataset.yaml": yaml });
    await rebuilt(0);
  });

  test("environment values are kept as an HMAC under this machine's key: another machine's stamp does not hold", async () => {
    await rebuilt(0, { MAX_TOKENS: "8" }); // set to its default is still a change of the environment
    await skipped({ MAX_TOKENS: "8" });
    const [name] = await readdir(join(p.dir, "cache/state/stamps"));
    const stamp = await p.read(`cache/state/stamps/${name}`);
    assert.match(stamp, /"names":\["MAX_TOKENS"\]/);
    const other = await mkdtemp(join(tmpdir(), "synthbuild-other-machine-"));
    try {
      const r = await runCli(["build", "--verbose"], p.dir, { MAX_TOKENS: "8", SYNTHBUILD_STATE_DIR: other });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stderr, /reading the manifest: an environment variable the manifest reads changed, or this is another machine/);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
    await rebuilt(0);
  });

  test("a damaged machine key is replaced, whole and private; with nowhere to keep one, --verbose says so", async () => {
    const state = await mkdtemp(join(tmpdir(), "synthbuild-state-"));
    try {
      await writeFile(join(state, "stamp-key"), "");
      const env = { MAX_TOKENS: "8", SYNTHBUILD_STATE_DIR: state };
      await rebuilt(0, env);
      const key = await stat(join(state, "stamp-key"));
      assert.equal(key.size, 32);
      assert.equal(key.mode & 0o777, 0o600);
      await skipped(env);
    } finally {
      await rm(state, { recursive: true, force: true });
    }
    // A folder under a file: it can never be made.
    const nowhere = await runCli(["build", "--verbose"], p.dir, { MAX_TOKENS: "8", SYNTHBUILD_STATE_DIR: join(p.dir, "genres.txt", "state") });
    assert.equal(nowhere.status, 0, nowhere.stderr);
    assert.match(nowhere.stderr, /no stamp written: no machine key could be kept/);
    await rebuilt(0);
  });

  test("--offline and not are stamped apart", async () => {
    await skipped();
    const offline = await runCli(["build", "--offline", "--verbose"], p.dir);
    assert.equal(offline.status, 0, offline.stderr);
    assert.match(offline.stderr, /reading the manifest: the last build was not --offline/);
    assert.match(await p.read("dataset.lock"), /"offline":true/);
    await rebuilt(0);
    assert.doesNotMatch(await p.read("dataset.lock"), /"offline":true/);
  });

  test("a corrupt or foreign stamp is ignored", async () => {
    const stamps = join(p.dir, "cache/state/stamps");
    const [name] = await readdir(stamps);
    await p.write({ [`cache/state/stamps/${name}`]: "{not json" });
    await rebuilt(0);
    await skipped();
  });

  test("--max-cost checks prices on a no-op too, stamp or not", async () => {
    const server = await startTestServer();
    const q = await TempProject.create({
      "dataset.yaml": `version: 1\nname: priced\nmodel: { name: unpriced-model, base_url: "${server.baseURL}" }\ndimensions: { g: [a, b] }\nsteps: [ { id: s, generate: { prompt: "{{ g }}" } } ]\noutput: { path: dist/o.jsonl, prompt: "{{ g }}", completion: "{{ s }}" }\n`,
    });
    try {
      assert.equal((await runCli(["build"], q.dir, { OPENAI_API_KEY: "k" })).status, 0);
      assert.match((await runCli(["build", "--verbose"], q.dir, { OPENAI_API_KEY: "k" })).stderr, STAMP);
      const r = await runCli(["build", "--max-cost", "1"], q.dir, { OPENAI_API_KEY: "k" });
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /--max-cost needs a price for unpriced-model/);
    } finally {
      await q.remove();
      await server.close();
    }
  });

  test("a build that fails a sample leaves no stamp behind", async () => {
    await p.write({ "tag.mjs": `export default (v) => { if (v.genre === "noir") throw new Error("no noir"); return v.s; };\n` });
    const r = await runCli(["build", "--json"], p.dir);
    assert.equal(r.status, 1, r.stderr);
    const again = await runCli(["build", "--json"], p.dir);
    assert.equal(again.status, 1, "the failed samples are retried, not skipped by a stamp");
    assert.equal(JSON.parse(again.stdout).failed, 3);
  });
});
