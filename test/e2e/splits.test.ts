import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { runCliSync } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

/** Splits end to end, through the real binary: never empty, close to the fractions, stable as the set grows; group_by. */

const values = (n: number, prefix = "v") => Array.from({ length: n }, (_, i) => `${prefix}${i + 1}`).join(", ");

const manifest = (o: { seed: number; n: number; split?: string }) => `version: 1
name: splits
seed: ${o.seed}
model: { provider: echo }
dimensions:
  n: [${values(o.n)}]
steps:
  - id: s
    generate: { prompt: "Say {{ n }}" }
output:
  path: dist/x.jsonl
  format: prompt-completion
  prompt: "{{ n }}"
  completion: "{{ s }}"
  split: ${o.split ?? "{ train: 0.9, validation: 0.1 }"}
`;

/** Prompt → split, from the files a build wrote. */
async function placed(p: TempProject, names = ["train", "validation"]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of names) {
    const text = await p.read(`dist/x.${name}.jsonl`);
    for (const line of text.split("\n").filter(Boolean)) {
      const prompt = JSON.parse(line).prompt as string;
      assert.ok(!out.has(prompt), `${prompt} is in two splits`);
      out.set(prompt, name);
    }
  }
  return out;
}

const build = (p: TempProject) => {
  const r = runCliSync(["build", "--offline", "--json"], p.dir);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
};

describe("splits", () => {
  test("20 samples at 0.9/0.1: 18 train and 2 validation rows, where hashing alone gave validation none (seed 8)", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest({ seed: 8, n: 20 }) });
    const json = build(p);
    assert.deepEqual(
      json.outputs.map((o: { path: string; rows: number }) => [o.path, o.rows]),
      [
        ["dist/x.train.jsonl", 18],
        ["dist/x.validation.jsonl", 2],
      ],
    );
    // Three splits and three samples: one each, however the hashes fall.
    await p.write({ "dataset.yaml": manifest({ seed: 8, n: 3, split: "{ train: 0.8, validation: 0.1, test: 0.1 }" }) });
    const three = build(p);
    assert.deepEqual(
      three.outputs.map((o: { rows: number }) => o.rows),
      [1, 1, 1],
    );
    await p.remove();
  });

  test("growing from 20 to 200 samples moves only the rows the small-sample correction placed (seed 8: 2), and none without it (seed 7)", async () => {
    for (const [seed, corrected] of [
      [8, 2],
      [7, 0],
    ] as const) {
      const p = await TempProject.create({ "dataset.yaml": manifest({ seed, n: 20 }) });
      build(p);
      const small = await placed(p);
      await p.write({ "dataset.yaml": manifest({ seed, n: 200 }) });
      const json = build(p);
      const grown = await placed(p);
      assert.equal(grown.size, 200);
      const moved = [...small].filter(([prompt, split]) => grown.get(prompt) !== split).length;
      assert.equal(moved, corrected, `seed ${seed}: ${moved} of 20 rows changed split`);
      // Still close to 0.9/0.1 at 200 (within the band of split.ts: 14..26).
      const validation = json.outputs.find((o: { path: string }) => o.path === "dist/x.validation.jsonl").rows;
      assert.ok(validation >= 14 && validation <= 26, `${validation} validation rows of 200`);
      await p.remove();
    }
  });

  test("group_by: [doc] keeps every sample of a document in one split; both splits non-empty", async () => {
    const grouped = (groupBy: string) => `version: 1
name: docs
seed: 3
model: { provider: echo }
dimensions:
  doc: [${values(20, "doc")}]
  question: [who, what, when]
combine: { mode: product, repeat: 2 }
steps:
  - id: s
    generate: { prompt: "Ask {{ question }} about {{ doc }}" }
output:
  path: dist/x.jsonl
  format: jsonl
  record: { doc: "{{ doc }}", question: "{{ question }}", answer: "{{ s }}" }
  split: { train: 0.9, validation: 0.1, group_by: [${groupBy}] }
`;
    const p = await TempProject.create({ "dataset.yaml": grouped("doc") });
    const json = build(p);
    assert.equal(json.samples, 120);
    const docsIn = async (name: string) =>
      new Set(
        (await p.read(`dist/x.${name}.jsonl`))
          .split("\n")
          .filter(Boolean)
          .map((l) => JSON.parse(l).doc as string),
      );
    const train = await docsIn("train");
    const validation = await docsIn("validation");
    assert.deepEqual([train.size, validation.size], [18, 2], "20 documents at 0.9/0.1");
    for (const d of validation) assert.ok(!train.has(d), `${d} straddles train and validation`);
    // 6 rows a document (3 questions × 2 repeats), all in its split.
    assert.equal((await p.read("dist/x.validation.jsonl")).split("\n").filter(Boolean).length, 12);
    // Without group_by the unit is the combination, and documents straddle: what group_by is for.
    await p.write({ "dataset.yaml": grouped("doc, question").replace(", group_by: [doc, question]", "") });
    build(p);
    const trainNow = await docsIn("train");
    assert.ok(
      [...(await docsIn("validation"))].some((d) => trainNow.has(d)),
      "without group_by some document has rows in both splits",
    );
    await p.remove();
  });

  test("group_by names a dimension that does not exist: exit 2, its position and a did-you-mean", async () => {
    const p = await TempProject.create({
      "dataset.yaml": manifest({ seed: 1, n: 4, split: "{ train: 0.5, validation: 0.5, group_by: [doc] }" }).replace("  n: [", "  docs: [a, b]\n  n: ["),
    });
    const r = runCliSync(["build", "--offline"], p.dir);
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /dataset\.yaml:\d+:\d+ output\.split\.group_by\[0\]: group_by: 'doc' is not a dimension/);
    assert.match(r.stderr, /hint: did you mean 'docs'\?/);
    assert.equal(await p.exists("dist/x.train.jsonl"), false, "nothing is written");
    await p.remove();
  });
});
