import assert from "node:assert/strict";
import { readdir, rm, utimes } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

/**
 * The up-to-date stamp lets a no-op build skip reading the manifest. It must never make a build
 * that has work to do (or a dist/ to restore) into a no-op. Each case changes one thing the
 * dataset depends on and checks the build notices; the run module counts how often it is
 * imported, which shows whether the manifest was read at all.
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
  "tag.mjs": `import { appendFileSync } from "node:fs";\nappendFileSync(new URL("./imports.log", import.meta.url), "x");\nexport default (v) => v.s + " #1";\n`,
};

describe("the up-to-date stamp", () => {
  let p: TempProject;
  const build = async (env: Record<string, string> = {}) => {
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { samples: number; requests: number; cached: number; outputs: { rows: number }[] };
  };
  const imports = async () => (await p.exists("imports.log") ? (await p.read("imports.log")).length : 0);
  /** The build reads the manifest (imports the module) and leaves a dataset verify accepts. */
  const rebuilt = async (requests: number, env: Record<string, string> = {}) => {
    const before = await imports();
    const r = await build(env);
    assert.equal(r.requests, requests, "requests");
    assert.ok((await imports()) > before, "the manifest was read, not skipped");
    const v = await runCli(["verify"], p.dir, env);
    assert.equal(v.status, 0, v.stderr);
  };
  const skipped = async (env: Record<string, string> = {}) => {
    const before = await imports();
    const r = await build(env);
    assert.equal(r.requests, 0);
    assert.equal(await imports(), before, "a no-op by the stamp reads nothing");
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
    await rebuilt(0);
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
    await p.write({ "tag.mjs": files["tag.mjs"].replace("#1", "#2") });
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
    await rm(join(p.dir, "cache/objects", key.slice(0, 2), `${key}.json`));
    await rebuilt(1);
    await skipped();
  });

  test("a corrupt or foreign stamp is ignored", async () => {
    const stamps = join(p.dir, "cache/state/stamps");
    const [name] = await readdir(stamps);
    await p.write({ [`cache/state/stamps/${name}`]: "{not json" });
    await rebuilt(0);
    await skipped();
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
