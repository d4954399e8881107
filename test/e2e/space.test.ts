/**
 * End-to-end, through the real CLI: spaces far past the product. A pairwise array over 30
 * dimensions of 30 values plans and builds offline with every allowed pair in the lock; a
 * sample from 10^12 combinations plans in seconds; a product of 10^9 is refused at load.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

const list = (n: number, p: string) => `[${Array.from({ length: n }, (_, j) => `${p}${j}`).join(", ")}]`;
const dims = (k: number, v: number) => Array.from({ length: k }, (_, i) => `  d${i}: ${list(v, "v")}`).join("\n");

function manifest(dimensions: string, combine: string, reads = "{{ d0 }} {{ d1 }}"): string {
  return `version: 1
name: space
model: { provider: echo, params: { max_tokens: 4 } }
dimensions:
${dimensions}
combine: ${combine}
steps:
  - id: s
    generate: { prompt: "${reads}" }
output: { path: dist/x.jsonl, format: prompt-completion, prompt: "{{ d0 }}", completion: "{{ s }}" }
`;
}

describe("spaces past the product", { timeout: 120_000 }, () => {
  test("pairwise over 30 × 30 with an exclude: plan says every allowed pair is covered, build writes them all and never the excluded one", async () => {
    const p = await TempProject.create({
      "dataset.yaml": manifest(
        dims(30, 30),
        "{ mode: pairwise, exclude: [{ d0: v0, d1: v1 }] }",
        Array.from({ length: 30 }, (_, i) => `{{ d${i} }}`).join(" "),
      ),
    });
    try {
      const plan = await runCli(["plan", "--json"], p.dir);
      assert.equal(plan.status, 0, plan.stderr);
      const planned = JSON.parse(plan.stdout) as { samples: number; pairwise: { a: string; b: string; covered: number; total: number }[] };
      assert.equal(planned.pairwise.length, 435);
      for (const x of planned.pairwise) assert.equal(x.covered, x.total, `${x.a} × ${x.b}: ${x.covered} of ${x.total}`);
      assert.equal(
        planned.pairwise.reduce((n, x) => n + x.total, 0),
        435 * 900 - 1,
      );
      assert.ok(planned.samples >= 900 && planned.samples < 2500, `${planned.samples} rows`);

      const build = await runCli(["build", "--json"], p.dir);
      assert.equal(build.status, 0, build.stderr);
      assert.equal((JSON.parse(build.stdout) as { samples: number }).samples, planned.samples);
      // The lock, read on its own: every pair of values of every two dimensions, but d0 v0 with d1 v1.
      const lines = (await p.read("dataset.lock")).trim().split("\n");
      const values = lines.flatMap((l) => {
        const x = JSON.parse(l) as { values?: Record<string, string> };
        return x.values ? [x.values] : [];
      });
      assert.equal(values.length, planned.samples);
      const seen = new Set<string>();
      for (const v of values) {
        assert.ok(!(v.d0 === "v0" && v.d1 === "v1"), "an excluded combination was built");
        for (let i = 0; i < 30; i++) for (let j = i + 1; j < 30; j++) seen.add(`${i}=${v[`d${i}`]},${j}=${v[`d${j}`]}`);
      }
      assert.equal(seen.size, 435 * 900 - 1);
      assert.equal((await p.read("dist/x.jsonl")).trim().split("\n").length, planned.samples);
    } finally {
      await p.remove();
    }
  });

  test("a sample of 500 from 10^12 combinations plans in seconds, and the same again", async () => {
    const p = await TempProject.create({
      "dataset.yaml": manifest(dims(12, 10), "{ mode: sample, n: 500 }", Array.from({ length: 12 }, (_, i) => `{{ d${i} }}`).join(" ")),
    });
    try {
      const started = Date.now();
      const plan = await runCli(["plan", "--json"], p.dir);
      const seconds = (Date.now() - started) / 1000;
      assert.equal(plan.status, 0, plan.stderr);
      assert.equal((JSON.parse(plan.stdout) as { samples: number }).samples, 500);
      // The walk of the product this replaces would take days; a shared, loaded machine, seconds.
      assert.ok(seconds < 30, `${seconds} s`);
      const build = await runCli(["build", "--json"], p.dir);
      assert.equal(build.status, 0, build.stderr);
      const again = await runCli(["build", "--json"], p.dir);
      assert.equal((JSON.parse(again.stdout) as { requests: number }).requests, 0, "a rebuild drew other samples");
    } finally {
      await p.remove();
    }
  });

  test("a product of 10^9 is refused at load, with its size and a hint, at once and writing nothing", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(dims(9, 10), "{ mode: product }") });
    try {
      const started = Date.now();
      const r = await runCli(["plan"], p.dir);
      assert.equal(r.status, 2);
      assert.match(r.stderr, /dataset\.yaml:\d+:\d+ combine: product makes 1\.0 × 10\^9 samples \(before excludes\): more than 1\.0 × 10\^7/);
      assert.match(r.stderr, /hint: draw some of them: mode: sample with n:/);
      assert.ok(Date.now() - started < 10_000);
      assert.equal(await p.exists("dataset.lock"), false);
      assert.equal(await p.exists("cache"), false);
    } finally {
      await p.remove();
    }
  });
});
