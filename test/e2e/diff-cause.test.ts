import assert from "node:assert/strict";
import { cp } from "node:fs/promises";
import { join } from "node:path";
import { test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";

/**
 * `diff` names the step a change started at, whatever the steps' ids: the lock keeps them sorted by
 * id, and here the step that reads the first (`cleaned`) sorts before it (`outline`).
 */
const manifest = (o: { outline?: string; cleaned?: string } = {}) => `version: 1
name: causes
seed: 3
model: { name: gpt-4o-mini, params: { temperature: 1, max_tokens: 30 } }
dimensions:
  genre: [sf, noir, western]
  place: [Paris, Kyoto]
steps:
  - id: outline
    generate: { prompt: "${o.outline ?? "{{ nonce }} A {{ genre }} story in {{ place }}."}" }
  - id: cleaned
    generate: { prompt: "${o.cleaned ?? "Tidy: {{ outline }}"}" }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ genre }} in {{ place }}", completion: "{{ cleaned }}" }
`;

async function causes(p: TempProject, from: string): Promise<[string, number][]> {
  const d = await runCli(["diff", from, "dataset.lock", "--json"], p.dir);
  assert.equal(d.status, 0, d.stderr);
  return JSON.parse(d.stdout).changed.map((c: { cause: string; count: number }) => [c.cause, c.count]);
}

test("diff blames the step that changed, not a step after it whose id sorts first", async () => {
  const p = await TempProject.create({ "dataset.yaml": manifest() });
  try {
    const build = async () => assert.equal((await runCli(["build", "--offline", "-q"], p.dir)).status, 0);
    await build();
    await cp(join(p.dir, "dataset.lock"), join(p.dir, "v1.lock"));

    const id = (await p.read("dataset.lock"))
      .split("\n")
      .map((l) => JSON.parse(l || "{}"))
      .find((o) => o.values?.genre === "noir")!.id as string;
    const rerolled = await runCli(["reroll", id, "--offline", "-q"], p.dir);
    assert.equal(rerolled.status, 0, rerolled.stderr);
    assert.deepEqual(await causes(p, "v1.lock"), [["step 'outline' rerolled", 1]]);

    await cp(join(p.dir, "dataset.lock"), join(p.dir, "v2.lock"));
    await p.write({ "dataset.yaml": manifest({ outline: "{{ nonce }} A {{ genre }} tale set in {{ place }}." }) });
    await build();
    assert.deepEqual(await causes(p, "v2.lock"), [["step 'outline' changed: template", 6]]);

    await cp(join(p.dir, "dataset.lock"), join(p.dir, "v3.lock"));
    await p.write({ "dataset.yaml": manifest({ outline: "{{ nonce }} A {{ genre }} tale set in {{ place }}.", cleaned: "Tidy up: {{ outline }}" }) });
    await build();
    assert.deepEqual(await causes(p, "v3.lock"), [["step 'cleaned' changed: template", 6]]);
  } finally {
    await p.remove();
  }
});
