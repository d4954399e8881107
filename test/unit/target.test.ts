import assert from "node:assert/strict";
import { test } from "node:test";
import { candidates, expand } from "../../src/expand/expand.js";
import { nextWave } from "../../src/expand/target.js";
import { parseManifest } from "../../src/manifest/load.js";
import type { DedupeStep } from "../../src/manifest/types.js";
import { applyDedupe, newRun } from "../../src/plan/pipeline.js";
import { dropBeyondTarget } from "../../src/plan/target-rows.js";

const manifest = (combine: string) => `version: 1
name: t
seed: 5
model: { provider: echo }
dimensions:
  genre: [sf, romance, comedy]
  place: [Paris, Kyoto]
${combine}
steps:
  - id: s
    generate: { prompt: "{{ nonce }} {{ genre }} {{ place }}" }
  - id: once
    dedupe: { field: s }
output: { path: dist/x.jsonl, format: prompt-completion, prompt: "{{ genre }}", completion: "{{ s }}" }
`;

const load = (combine: string) => parseManifest("dataset.yaml", "/nonexistent/t/dataset.yaml", manifest(combine), {});

test("candidates are the samples repeat: would make, under the same ids: all of repeat 0 first, then repeat 1", async () => {
  const repeated = expand(await load("combine: { repeat: 3 }"));
  const m = await load("target: { rows: 4 }");
  const c = candidates(m, 18);
  assert.deepEqual(new Set(c.map((s) => s.id)), new Set(repeated.map((s) => s.id)));
  assert.deepEqual(
    c.map((s) => s.repeat),
    [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2],
  );
  // A prefix of a longer list: more candidates never reorder the first ones.
  assert.deepEqual(
    candidates(m, 8).map((s) => s.id),
    c.slice(0, 8).map((s) => s.id),
  );
});

test("the next wave: sized by the keep rate plus a tenth, at least the rows missing, never past max_candidates", () => {
  const t = { rows: 100, maxCandidates: 400 };
  assert.equal(nextWave(t, 100, 50), 110);
  assert.equal(nextWave(t, 100, 99), 2);
  assert.equal(nextWave(t, 100, 0), 100);
  assert.equal(nextWave(t, 390, 10), 10);
  assert.equal(nextWave(t, 400, 10), 0);
  assert.equal(nextWave(t, 120, 100), 0);
});

test("with a rank, dedupe keeps the earliest candidate, so a later wave never displaces a row; beyond rows is a prefix", async () => {
  const m = await load("target: { rows: 1 }");
  const step = m.steps[1] as DedupeStep;
  const all = candidates(m, 6).map((s) => newRun(m, s));
  for (const r of all) r.scope.s = "same";
  // The last candidate has the smallest id of the group: by id alone it would win.
  const smallest = [...all].sort((a, b) => (a.sample.id < b.sample.id ? -1 : 1))[0]!;
  const runs = [...all.filter((r) => r !== smallest), smallest];
  const rank = new Map(runs.map((r, i) => [r, i]));
  applyDedupe(step, runs.slice(0, 5), rank);
  applyDedupe(step, runs, rank);
  assert.deepEqual(
    runs.map((r) => r.status),
    ["kept", "dropped", "dropped", "dropped", "dropped", "dropped"],
  );
  assert.match(smallest.stoppedBy!.reason, new RegExp(`duplicates sample ${runs[0]!.sample.id}`));
  const fresh = candidates(m, 6).map((s) => newRun(m, s));
  dropBeyondTarget({ rows: 2, maxCandidates: 6 }, fresh);
  assert.deepEqual(
    fresh.map((r) => r.status),
    ["kept", "kept", "dropped", "dropped", "dropped", "dropped"],
  );
  assert.equal(fresh[2]!.stoppedBy?.step, "target.rows");
});
