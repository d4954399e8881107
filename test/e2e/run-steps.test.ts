import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { LockSample, LockStep } from "../../src/lock/lockfile.js";
import { runCliBounded, spawnCli, waitFor } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";

/**
 * `run` steps end to end: a module's identity is its whole import graph (local files, packages
 * by version), and the module runs in a worker thread that cannot write to stdout, end the build
 * or hang it.
 */

const manifest = (run = "{ module: steps/post.mjs }") => `version: 1
name: runs
model: { provider: echo, name: m }
dimensions:
  topic: [cats, dogs, owls]
steps:
  - id: first
    generate: { prompt: "Write about {{ topic }}" }
  - id: post
    run: ${run}
  - id: second
    generate: { prompt: "Expand {{ post }}" }
output: { path: dist/out.jsonl, format: jsonl, record: { post: "{{ post }}", second: "{{ second }}" } }
`;

interface Built {
  status: number | null;
  stdout: string;
  stderr: string;
  json: { requests: number; cached: number; failed: number; failures: { sample: string; step: string; reason: string }[] };
}

async function build(p: TempProject, ...args: string[]): Promise<Built> {
  const r = await runCliBounded(["build", "--json", "--verbose", ...args], p.dir);
  let json: Built["json"];
  try {
    json = JSON.parse(r.stdout);
  } catch {
    assert.fail(`stdout is not one JSON object (exit ${r.status}):\n${r.stdout}\nstderr:\n${r.stderr}`);
  }
  return { ...r, json };
}

async function planSteps(p: TempProject): Promise<Record<string, { cached: number; to_run: number }>> {
  const r = await runCliBounded(["plan", "--json"], p.dir);
  assert.equal(r.status, 0, r.stderr);
  return Object.fromEntries((JSON.parse(r.stdout) as { steps: { id: string; cached: number; to_run: number }[] }).steps.map((s) => [s.id, s]));
}

/** One step's lock entries, by topic. */
async function lockSteps(p: TempProject, step: string): Promise<Record<string, LockStep>> {
  const samples = (await p.read("dataset.lock"))
    .split("\n")
    .filter((l) => l.startsWith('{"id"'))
    .map((l) => JSON.parse(l) as LockSample);
  return Object.fromEntries(samples.map((s) => [s.values.topic!, s.steps[step]!]));
}

const STAMP_HOLDS = /up to date: nothing the last complete build's stamp lists has changed/;

describe("a run module's identity is its whole import graph", () => {
  let p: TempProject;
  before(async () => {
    p = await TempProject.create({
      "dataset.yaml": manifest(),
      "steps/post.mjs": `import { tag } from "./lib/tag.mjs";\nimport { shout } from "shout-case";\nexport default async (v) => {\n  const { wrap } = await import("./lib/wrap.mjs");\n  return wrap(shout(tag(v.first.slice(0, 24))));\n};\n`,
      "steps/lib/tag.mjs": `import { SUFFIX } from "./suffix.mjs";\nexport const tag = (t) => t + SUFFIX;\n`,
      "steps/lib/suffix.mjs": `export const SUFFIX = " #1";\n`,
      "steps/lib/wrap.mjs": `export const wrap = (t) => "[" + t + "]";\n`,
      "node_modules/shout-case/package.json": `{ "name": "shout-case", "version": "1.0.0", "type": "module", "exports": "./index.js" }\n`,
      "node_modules/shout-case/index.js": `export const shout = (t) => t.toUpperCase();\n`,
    });
    const first = await build(p);
    assert.equal(first.status, 0, first.stderr);
    assert.equal(first.json.requests, 6);
    assert.match(await p.read("dist/out.jsonl"), /#1\]/);
  });
  after(() => p.remove());

  test("editing nothing is a no-op, decided by the stamp", async () => {
    const r = await build(p);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.requests, 0);
    assert.match(r.stderr, STAMP_HOLDS);
  });

  test("editing a helper two imports down: plan shows it, the stamp does not hold, build reruns exactly the run step and what follows", async () => {
    const firstBefore = await lockSteps(p, "first");
    const postBefore = await lockSteps(p, "post");
    await p.write({ "steps/lib/suffix.mjs": `export const SUFFIX = " #2";\n` });

    const plan = await planSteps(p);
    assert.deepEqual([plan.first!.cached, plan.first!.to_run], [3, 0]);
    assert.deepEqual([plan.post!.cached, plan.post!.to_run], [0, 3]);
    assert.deepEqual([plan.second!.cached, plan.second!.to_run], [0, 3]);

    const r = await build(p);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /reading the manifest: .*suffix\.mjs changed/);
    assert.equal(r.json.requests, 3, "only the step after the run step is requested again");
    assert.deepEqual(await lockSteps(p, "first"), firstBefore);
    const postAfter = await lockSteps(p, "post");
    for (const t of ["cats", "dogs", "owls"]) assert.notEqual(postAfter[t]!.out, postBefore[t]!.out);
    assert.match(await p.read("dist/out.jsonl"), /#2\]/);
    assert.doesNotMatch(await p.read("dist/out.jsonl"), /#1\]/);
    assert.match((await build(p)).stderr, STAMP_HOLDS);
  });

  test("without the stamp, the full check sees an edited import too", async () => {
    await rm(join(p.dir, "cache/state/stamps"), { recursive: true, force: true });
    await p.write({ "steps/lib/wrap.mjs": `export const wrap = (t) => "<" + t + ">";\n` });
    const r = await build(p);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /up to date/);
    assert.equal(r.json.requests, 3);
    assert.match(await p.read("dist/out.jsonl"), /"post":"<.*#2>"/);
  });

  test("upgrading an imported package reruns the step; the same text asks for nothing new", async () => {
    const before = await lockSteps(p, "post");
    await p.write({ "node_modules/shout-case/package.json": `{ "name": "shout-case", "version": "1.0.1", "type": "module", "exports": "./index.js" }\n` });
    const r = await build(p);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /reading the manifest: .*shout-case[/\\]package\.json changed/);
    assert.equal(r.json.requests, 0);
    const after = await lockSteps(p, "post");
    for (const t of ["cats", "dogs", "owls"]) {
      assert.notEqual(after[t]!.r, before[t]!.r, "the recipe names the package's version");
      assert.equal(after[t]!.out, before[t]!.out);
    }
  });

  test("changing timeout_s reruns nothing: it cannot change the text", async () => {
    const lock = await p.read("dataset.lock");
    await p.write({ "dataset.yaml": manifest("{ module: steps/post.mjs, timeout_s: 5 }") });
    const r = await build(p);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.json.requests, 0);
    assert.equal(await p.read("dataset.lock"), lock);
    await p.write({ "dataset.yaml": manifest() });
  });

  test("an import deleted: exit 2, positioned at the step's module, naming the import; nothing written", async () => {
    const dist = await p.snapshot();
    const lock = await p.read("dataset.lock");
    await rm(join(p.dir, "steps/lib/suffix.mjs"));
    const r = await runCliBounded(["build"], p.dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /dataset\.yaml:10:\d+/);
    assert.match(r.stderr, /steps\/post\.mjs failed to load: steps\/lib\/tag\.mjs:1:\d+ imports '\.\/suffix\.mjs', which does not exist/);
    assert.deepEqual(await p.snapshot(), dist);
    assert.equal(await p.read("dataset.lock"), lock);
    await p.write({ "steps/lib/suffix.mjs": `export const SUFFIX = " #2";\n` });
    const back = await build(p);
    assert.equal(back.json.requests, 0);
  });

  test("a package that is not installed is a positioned load error", async () => {
    await rm(join(p.dir, "node_modules"), { recursive: true });
    const r = await runCliBounded(["plan"], p.dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /dataset\.yaml:10:\d+/);
    assert.match(r.stderr, /steps\/post\.mjs:2:\d+ imports 'shout-case', a package that is not installed/);
  });
});

describe("import cycles", () => {
  test("modules that import each other load, run, and are rerun when either is edited", async () => {
    const p = await TempProject.create({
      "dataset.yaml": manifest(),
      "steps/post.mjs": `import { even } from "./even.mjs";\nexport default (v) => (even(v.first.length) ? "even" : "odd") + " A";\n`,
      "steps/even.mjs": `import { odd } from "./odd.mjs";\nexport const even = (n) => n === 0 || odd(n - 1);\n`,
      "steps/odd.mjs": `import { even } from "./even.mjs";\nexport const odd = (n) => n !== 0 && even(n - 1);\n`,
    });
    try {
      const r = await build(p);
      assert.equal(r.status, 0, r.stderr);
      assert.match(await p.read("dist/out.jsonl"), /"post":"(even|odd) A"/);
      await p.write({ "steps/odd.mjs": `import { even } from "./even.mjs";\nexport const odd = (n) => n !== 0 && even(n - 1); // edited\n` });
      const plan = await planSteps(p);
      assert.equal(plan.post!.to_run, 3);
      const again = await build(p);
      assert.equal(again.status, 0, again.stderr);
      assert.match(again.stderr, /odd\.mjs changed/);
    } finally {
      await p.remove();
    }
  });
});

/** A project whose one run step's module is `body` (the module's text). */
async function withModule(body: string, fn: (p: TempProject) => Promise<void>, run = "{ module: steps/post.mjs, timeout_s: 0.5 }"): Promise<void> {
  const p = await TempProject.create({ "dataset.yaml": manifest(run), "steps/post.mjs": body });
  try {
    await fn(p);
  } finally {
    await p.remove();
  }
}

describe("a run module is confined to its worker thread", () => {
  test("console.log, at load and in each call, goes to stderr: --json's stdout stays one object", async () => {
    await withModule(`console.log("loading the module");\nexport default (v) => { console.log("called for " + v.topic); return v.topic; };\n`, async (p) => {
      const r = await build(p);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.json.failed, 0);
      assert.match(r.stderr, /loading the module/);
      assert.match(r.stderr, /called for owls/);
      const plan = await runCliBounded(["plan", "--json"], p.dir);
      assert.doesNotThrow(() => JSON.parse(plan.stdout), plan.stdout);
    });
  });

  test("process.exit(0) in a call fails that sample, naming the module; the build writes dist/ and the lock and exits 1", async () => {
    await withModule(`export default (v) => { if (v.topic === "dogs") process.exit(0); return v.topic; };\n`, async (p) => {
      const r = await build(p);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.json.failed, 1);
      assert.match(r.json.failures[0]!.reason, /steps\/post\.mjs called process\.exit\(0\)/);
      assert.equal((await p.read("dist/out.jsonl")).trim().split("\n").length, 2);
      assert.ok(await p.exists("dataset.lock"));
    });
  });

  test("process.exit() from a callback ends only the worker: the call fails with a reason, the others go on", async () => {
    await withModule(`export default (v) => v.topic === "dogs" ? new Promise(() => setTimeout(() => process.exit(3), 1)) : v.topic;\n`, async (p) => {
      const r = await build(p);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.json.failed, 1);
      assert.match(r.json.failures[0]!.reason, /steps\/post\.mjs .*process\.exit\(3\)/);
      assert.equal((await p.read("dist/out.jsonl")).trim().split("\n").length, 2);
    });
  });

  test("process.exit() while loading is a positioned load error, exit 2", async () => {
    await withModule(`process.exit(0);\nexport default () => "x";\n`, async (p) => {
      const r = await runCliBounded(["build"], p.dir);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /dataset\.yaml:10:\d+.*\n?.*steps\/post\.mjs called process\.exit\(0\) while loading/);
      assert.equal(await p.exists("dataset.lock"), false);
    });
  });

  test("a call that never returns fails its sample after timeout_s; its worker is replaced and the rest are built", async () => {
    await withModule(`export default (v) => { if (v.topic === "cats") for (;;); return v.topic; };\n`, async (p) => {
      const r = await build(p);
      assert.equal(r.status, 1, r.stderr);
      assert.equal(r.json.failed, 1);
      assert.match(r.json.failures[0]!.reason, /steps\/post\.mjs did not return within 0\.5 s \(run\.timeout_s\)/);
      assert.deepEqual(
        (await p.read("dist/out.jsonl"))
          .trim()
          .split("\n")
          .map((l) => JSON.parse(l).post)
          .sort(),
        ["dogs", "owls"],
      );
    });
  });

  test("a module that never finishes loading is a positioned load error after timeout_s", async () => {
    await withModule(`for (;;);\nexport default () => "x";\n`, async (p) => {
      const r = await runCliBounded(["plan"], p.dir);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /steps\/post\.mjs did not finish loading within 0\.5 s/);
    });
  });

  test("throwing, or returning something else, fails the sample with the message", async () => {
    await withModule(
      `export default (v) => { if (v.topic === "cats") throw new Error("no cats"); return v.topic === "dogs" ? 42 : v.topic; };\n`,
      async (p) => {
        const r = await build(p);
        assert.equal(r.status, 1, r.stderr);
        const reasons = r.json.failures.map((f) => f.reason).sort();
        assert.deepEqual(reasons, ['steps/post.mjs returned 42; expected text or { drop: "reason" }', "steps/post.mjs threw: no cats"]);
      },
    );
  });

  test("a secret a module throws or drops with never reaches the lock, --json or stderr", async () => {
    await withModule(
      `export default (v) => {
  if (v.topic === "cats") throw new Error("upstream said: bad token " + process.env.MY_SERVICE_TOKEN);
  if (v.topic === "dogs") return { drop: "refused for " + process.env.OPENAI_API_KEY };
  return v.topic;
};\n`,
      async (p) => {
        const secrets = { MY_SERVICE_TOKEN: "tok-9f8e7d6c5b4a", OPENAI_API_KEY: "sk-runmodule-0123456789" };
        const r = await runCliBounded(["build", "--json"], p.dir, secrets);
        assert.equal(r.status, 1, r.stderr);
        const lock = await p.read("dataset.lock");
        for (const [where, text] of Object.entries({ lock, stdout: r.stdout, stderr: r.stderr }))
          for (const v of Object.values(secrets)) assert.ok(!text.includes(v), `${where} holds ${v}`);
        assert.match(lock, /threw: upstream said: bad token \*\*\*/);
        assert.match(lock, /refused for \*\*\*/);
      },
    );
  });

  test("Ctrl-C while a module loops forever: the first one interrupts the build (exit 130)", async () => {
    await withModule(
      `export default (v) => { if (v.topic !== "cats") return v.topic; console.error("looping now"); for (;;); };\n`,
      async (p) => {
        const run = spawnCli(["build"], p.dir);
        let stderr = "";
        run.child.stderr.on("data", (d) => (stderr += d));
        await waitFor(() => run.child.exitCode !== null || /looping now/.test(stderr), 10_000, "the module to start looping");
        run.child.kill("SIGINT");
        const r = await run.done;
        assert.equal(r.status, 130, `expected exit 130; signal ${r.signal}; stderr: ${r.stderr}`);
        assert.equal(r.stdout, "");
      },
      "{ module: steps/post.mjs, timeout_s: 600 }",
    );
  });

  test("Ctrl-C while a module loops forever as it loads: exit 130 at once", async () => {
    await withModule(
      `console.error("loading now");\nfor (;;);\nexport default () => "x";\n`,
      async (p) => {
        const run = spawnCli(["build"], p.dir);
        let stderr = "";
        run.child.stderr.on("data", (d) => (stderr += d));
        await waitFor(() => run.child.exitCode !== null || /loading now/.test(stderr), 10_000, "the module to start loading");
        run.child.kill("SIGINT");
        const r = await run.done;
        assert.equal(r.status, 130, `expected exit 130; signal ${r.signal}; stderr: ${r.stderr}`);
        assert.equal(await p.exists("dataset.lock"), false);
      },
      "{ module: steps/post.mjs, timeout_s: 600 }",
    );
  });
});
