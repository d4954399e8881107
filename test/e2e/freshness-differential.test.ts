import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, utimes } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { removeAnswers, storedKeys } from "../helpers/cache-files.js";
import { BIN, cliEnv } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { prng } from "../helpers/rng.js";

const VERDICTS = fileURLToPath(new URL("../helpers/verdicts.mjs", import.meta.url));

/**
 * "Is this up to date?" is answered three ways, which must agree after any edit a user makes:
 * - the stamp, which decides a no-op without reading the manifest;
 * - decide(), the full check build/plan/verify/--frozen share (recipes against the lock);
 * - the truth: the lock re-derived from the manifest and the cache as if nothing were known,
 *   compared byte for byte, with dist/ as the lock says and every answer it names present.
 * The stamp may be more cautious than decide() (a touched file it cannot vouch for), never less;
 * decide() must equal the truth. Before each build, plan's count of requests must be what the
 * build then makes (with target:, at most: a build may add waves). Random sequences of edits,
 * seeded and printed, so a failure can be replayed.
 */

const manifest = (o: State) => `version: 1
name: diff
seed: ${o.seed}
${o.rows ? `target: { rows: ${o.rows} }\n` : ""}model: { provider: echo, name: "\${MODEL:-m1}", params: { max_tokens: 30 } }
dimensions:
  genre: { file: "\${GENRES:-genres.txt}" }
  mood: [${o.n}]
  doc: { glob: "docs/*.md" }
steps:
  - id: s
    generate:
      prompt: "${o.template}"
  - id: tag
    run: { module: tag.mjs }
  - id: long
    filter: { field: tag, min_chars: ${o.min} }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ genre }} {{ doc_name }}", completion: "{{ tag }}" }
`;

type State = { min: number; seed: number; n: string; template: string; rows?: number };

test("the stamp, decide() and a full re-derivation agree after random user edits, and plan's requests are the build's", { timeout: 240_000 }, async (t) => {
  const seed = Number(process.env.DIFF_SEED ?? Math.floor(Math.random() * 1e9));
  t.diagnostic(`DIFF_SEED=${seed}`);
  const random = prng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const state: State = { min: 5, seed: 1, n: "calm, tense", template: "{{ genre }} {{ mood }} {{ doc }}" };
  let env: Record<string, string> = {};
  let counter = 0;
  const p = await TempProject.create({
    "dataset.yaml": manifest(state),
    "genres.txt": "sf\nromance\n",
    "docs/a.md": "alpha",
    "docs/b.md": "beta",
    "tag.mjs": `import { suffix } from "./suffix.mjs";\nexport default (v) => v.s.slice(0, 40) + suffix;\n`,
    "suffix.mjs": `export const suffix = " #0";\n`,
  });
  const stateDir = await mkdtemp(join(tmpdir(), "synthbuild-diff-state-"));
  const fullEnv = () => ({ ...env, SYNTHBUILD_STATE_DIR: stateDir });

  const edits: [string, () => Promise<void>][] = [
    ["edit a values file", () => p.write({ "genres.txt": pick(["sf\nromance\n", "sf\nnoir\n", "sf\nromance\nwestern\n"]) })],
    ["edit an inline list", async () => ((state.n = pick(["calm, tense", "calm", "calm, tense, eerie"])), p.write({ "dataset.yaml": manifest(state) }))],
    ["add or edit a globbed file", () => p.write({ [`docs/${pick(["a", "c"])}.md`]: pick(["alpha", "gamma", "delta"]) })],
    ["remove a globbed file", async () => rm(join(p.dir, "docs/c.md"), { force: true })],
    [
      "edit the run module",
      () => p.write({ "tag.mjs": `import { suffix } from "./suffix.mjs";\nexport default (v) => v.s.slice(0, ${pick([40, 41])}) + suffix;\n` }),
    ],
    ["edit a module the run module imports", () => p.write({ "suffix.mjs": `export const suffix = " #${pick([0, 1])}";\n` })],
    ["change a filter option", async () => ((state.min = pick([5, 45])), p.write({ "dataset.yaml": manifest(state) }))],
    [
      "edit a template",
      async () => (
        (state.template = pick(["{{ genre }} {{ mood }} {{ doc }}", "{{ mood }}: {{ genre }} {{ doc }}"])), p.write({ "dataset.yaml": manifest(state) })
      ),
    ],
    ["set, change or remove target.rows", async () => ((state.rows = pick([undefined, 3, 9])), p.write({ "dataset.yaml": manifest(state) }))],
    ["change the seed", async () => ((state.seed = pick([1, 2])), p.write({ "dataset.yaml": manifest(state) }))],
    ["touch the manifest", async () => utimes(join(p.dir, "dataset.yaml"), new Date(), new Date())],
    [
      "change an environment variable",
      async () => {
        env = pick<Record<string, string>>([{}, { MODEL: "m2" }, { GENRES: "genres.txt" }]);
      },
    ],
    ["edit dist/ by hand", () => p.write({ "dist/out.jsonl": `tampered ${counter++}\n` })],
    ["remove dist/", () => rm(join(p.dir, "dist"), { recursive: true, force: true })],
    ["touch dist/ (content unchanged)", async () => utimes(join(p.dir, "dist/out.jsonl"), new Date(), new Date()).catch(() => {})],
    ["edit the lock", async () => p.write({ "dataset.lock": (await p.read("dataset.lock").catch(() => "")).replace(/"r":"[0-9a-f]/, '"r":"x') })],
    ["remove the lock", () => rm(join(p.dir, "dataset.lock"), { force: true })],
    [
      "reroll a sample (recorded, built later)",
      async () => {
        const ids = [...(await p.read("dataset.lock").catch(() => "")).matchAll(/"id":"([0-9a-f]{16})"/g)].map((x) => x[1]!);
        // A sample with no answer to reroll is refused (exit 2) and changes nothing: also a case.
        if (ids.length) spawnSync(process.execPath, [BIN, "reroll", pick(ids), "--no-build", "--offline"], { cwd: p.dir, env: cliEnv(fullEnv()) });
      },
    ],
    [
      "remove a cache entry",
      async () => {
        const keys = await storedKeys(join(p.dir, "cache"));
        if (keys.length) await removeAnswers(join(p.dir, "cache"), [pick(keys)]);
      },
    ],
  ];

  const verdicts = async (): Promise<{ stamp: boolean; full: boolean; why: string; truth: boolean }> => {
    const r = spawnSync(process.execPath, [VERDICTS], { cwd: p.dir, env: cliEnv(fullEnv()), encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout);
  };
  const rebuild = (): number => {
    const r = spawnSync(process.execPath, [BIN, "build", "--offline", "--json"], { cwd: p.dir, env: cliEnv(fullEnv()), encoding: "utf8" });
    // A target the filters leave unreached is exit 1, with the lock and dist/ written all the same.
    if (!(r.status === 1 && /target\.rows \d+ not reached/.test(r.stderr))) assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { requests: number }).requests;
  };
  /** What plan says the build will request (with target:, for the candidates it covers: a build may add waves). */
  const planned = (): number => {
    const r = spawnSync(process.execPath, [BIN, "plan", "--offline", "--json"], { cwd: p.dir, env: cliEnv(fullEnv()), encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    return (JSON.parse(r.stdout) as { requests: number }).requests;
  };

  try {
    rebuild();
    let stampHeld = 0;
    let stale = 0;
    const history: string[] = [];
    for (let i = 0; i < Number(process.env.DIFF_STEPS ?? 20); i++) {
      const [name, edit] = pick(edits);
      await edit();
      history.push(name);
      const v = await verdicts();
      const where = `after: ${history.slice(-6).join(" → ")} (DIFF_SEED=${seed}, step ${i})`;
      if (v.stamp) assert.ok(v.full, `the stamp said up to date, decide() did not (${v.why}); ${where}`);
      assert.equal(v.full, v.truth, `decide() said ${v.full ? "up to date" : `stale (${v.why})`}, the re-derivation ${v.truth ? "fresh" : "stale"}; ${where}`);
      if (!v.full) stale++;
      if (random() < 0.5) {
        const told = planned();
        const made = rebuild();
        if (state.rows) assert.ok(made >= told, `plan said ${told} requests, the build made ${made}; ${where}`);
        else assert.equal(made, told, `plan said ${told} requests, the build made ${made}; ${where}`);
        history.push("build");
        const after = await verdicts();
        assert.ok(after.full && after.truth, `a build left it stale (${after.why}); ${where}`);
        if (after.stamp) stampHeld++;
      }
    }
    t.diagnostic(`${stale} edits made it stale; the stamp held ${stampHeld} times after a build`);
    assert.ok(stale > 4, "the edits must change something");
    assert.ok(stampHeld > 2, "the stamp must hold after builds, or this test checks nothing about it");
  } finally {
    await p.remove();
    await rm(stateDir, { recursive: true, force: true });
  }
});
