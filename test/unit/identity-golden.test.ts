import assert from "node:assert/strict";
import { test } from "node:test";
import { expand } from "../../src/expand/expand.js";
import { parseManifest } from "../../src/manifest/load.js";
import type { GenerateStep, Manifest } from "../../src/manifest/types.js";
import { assignSplits, splitOf } from "../../src/output/split.js";
import { renderRequest, requestKey, requestKeyV1 } from "../../src/plan/request.js";
import { baseScope, nonceFor } from "../../src/plan/scope.js";
import { hash64 } from "../../src/util/hash.js";

/**
 * What users pay for, pinned. A sample id names a row, a nonce is part of a paid prompt, a cache
 * key finds a paid answer, a split decides where a row is trained on. If one of these values
 * changes, every user's cache or dataset changes with it: that must be a deliberate, versioned
 * migration (a new KEY_VERSION, `combo:v2`, ...) with a note in the README, never the side effect
 * of a refactor. Update the values here only together with such a migration.
 */
const MANIFEST = `version: 1
name: golden
seed: 42
model:
  name: gpt-4o-mini
  params: { temperature: 1.0, max_tokens: 1000 }
dimensions:
  genre: [science fiction, romance, comedy]
  place: [Paris, a generation ship between stars]
  modifier:
    - { value: cerebral and suspenseful, weight: 2 }
    - supernatural and otherworldly
combine: { mode: product, repeat: 2 }
steps:
  - id: outline
    generate:
      system: You write plot outlines.
      prompt: |
        {{ nonce }}
        A {{ genre }} film set in {{ place }}. The story should be {{ modifier }}. Take {{ index }}.
  - id: local
    generate:
      model: { base_url: "http://127.0.0.1:8080/v1", name: tiny, params: { temperature: 0.7 } }
      prompt: "Expand: {{ outline }}"
output:
  path: dist/golden.jsonl
  prompt: "{{ genre }} / {{ place }}"
  completion: "{{ local }}"
  split: { train: 0.8, validation: 0.2 }
`;

async function golden(): Promise<Manifest> {
  return parseManifest("dataset.yaml", "/nonexistent/golden/dataset.yaml", MANIFEST, {});
}

const valuesOf = (m: Manifest, i: number) => expand(m)[i]!.values.map((v) => v.key);

test("golden: sample ids of a known manifest", async () => {
  const m = await golden();
  const samples = expand(m);
  assert.equal(samples.length, 24);
  const ids = samples.map((s) => s.id);
  assert.deepEqual(ids.slice(0, 4), GOLDEN.firstIds);
  assert.deepEqual(valuesOf(m, 0), ["science fiction", "Paris", "cerebral and suspenseful"]);
  assert.equal(hash64([...ids].sort().join(",")), GOLDEN.allIds);
  assert.equal(samples[0]!.comboId, GOLDEN.firstCombo);
});

test("golden: sampled ids (seeded, weighted) of a known manifest", async () => {
  const m = await parseManifest(
    "dataset.yaml",
    "/nonexistent/golden/dataset.yaml",
    MANIFEST.replace("{ mode: product, repeat: 2 }", "{ mode: sample, n: 5 }"),
    {},
  );
  assert.deepEqual(
    expand(m).map((s) => s.id),
    GOLDEN.sampledIds,
  );
});

test("golden: nonces, rendered prompts and cache keys", async () => {
  const m = await golden();
  const [outline, local] = m.steps as GenerateStep[];
  const sample = expand(m)[1]!;
  assert.equal(nonceFor(m, sample, "outline"), GOLDEN.nonce);
  const scope = baseScope(m, sample);
  const req = renderRequest(outline!, scope, undefined, { nonce: nonceFor(m, sample, "outline") });
  assert.equal(req.messages[1]!.content, `${GOLDEN.nonce}\nA science fiction film set in Paris. The story should be cerebral and suspenseful. Take 1.\n`);
  assert.equal(requestKey(req, outline), GOLDEN.keyOpenAI);
  const offline = renderRequest(outline!, scope, "echo", { nonce: nonceFor(m, sample, "outline") });
  assert.equal(requestKey(offline, outline), GOLDEN.keyEcho);
  const expandReq = renderRequest(local!, { ...scope, outline: "An outline." }, undefined, { nonce: nonceFor(m, sample, "local") });
  assert.equal(requestKey(expandReq, local), GOLDEN.keyLocal);
  // What `synthbuild migrate` looks for: the keys these requests had under key version 1.
  assert.equal(requestKeyV1(req), "e67fe395470fd5d07707fa2b5352994f");
  assert.equal(requestKeyV1(offline), "01a9d3cb70bd07b84482b518780eabf1");
  assert.equal(requestKeyV1(expandReq), "de46918d9224ad2b91f79c19796d1508");
  // Key version 2: the endpoint that answers is part of the key.
  assert.equal(req.endpoint, "https://api.openai.com/v1");
  assert.equal(expandReq.endpoint, "http://127.0.0.1:8080/v1");
  assert.equal(offline.endpoint, "echo");
});

test("golden: a rerolled step's attempt (synthbuild reroll) changes its nonce, key and recipe, and attempt 0 is no reroll", async () => {
  const { stepRecipe } = await import("../../src/plan/recipe.js");
  const m = await golden();
  const [outline] = m.steps as GenerateStep[];
  const sample = expand(m)[1]!;
  const at = (n: number) => ({ ...sample, attempts: { outline: n } });
  const keyOf = (s: typeof sample) => {
    const req = renderRequest(outline!, baseScope(m, s), undefined, { nonce: nonceFor(m, s, "outline") });
    if (s.attempts?.outline) req.attempt = s.attempts.outline;
    return requestKey(req, outline);
  };
  // Attempt 0 (or an attempt of another step) is the identity every sample had before rerolls.
  assert.equal(nonceFor(m, at(0), "outline"), GOLDEN.nonce);
  assert.equal(keyOf(at(0)), GOLDEN.keyOpenAI);
  assert.equal(nonceFor(m, { ...sample, attempts: { local: 3 } }, "outline"), GOLDEN.nonce);
  const noOuts = () => undefined;
  assert.equal(stepRecipe(m, outline!, at(0), noOuts, false), stepRecipe(m, outline!, sample, noOuts, false));
  // `nonce:${seed}:${id}:${step}:${n}` and `attempt: n` in the key, from n = 1.
  assert.equal(nonceFor(m, at(1), "outline"), "3ad68635-7dce-439b-a4cd-f7179f8ea4a0");
  assert.equal(keyOf(at(1)), "812e95e200f25cae2ce844db8b81d9a8");
  assert.notEqual(keyOf(at(2)), keyOf(at(1)));
  assert.notEqual(stepRecipe(m, outline!, at(1), noOuts, false), stepRecipe(m, outline!, sample, noOuts, false));
});

test("golden: splits", async () => {
  const m = await golden();
  const split = m.outputs[0]!.split!;
  assert.deepEqual(
    expand(m)
      .map((s) => splitOf(m.seed, s.comboId, split)[0])
      .join(""),
    GOLDEN.splits,
  );
  // Split version 2: hashing alone gave validation 1 of these 12 combinations, where 0.2 asks
  // for 2.4; the small-sample correction moves the one nearest the boundary, and only it.
  const samples = expand(m);
  const assigned = assignSplits(
    m.seed,
    samples.map((s) => s.comboId),
    split,
  );
  assert.equal(samples.map((s) => assigned.splits.get(s.comboId)![0]).join(""), GOLDEN.assignedSplits);
  assert.equal(assigned.corrected, 1);
});

const GOLDEN = {
  firstIds: ["9f43e3b243f4611b", "3939b15dc1ee8381", "7a2e288d8df5b3b7", "d733534450ee5581"],
  allIds: "c337b199861c7db6",
  firstCombo: "68fef6f162bdc6ac",
  sampledIds: ["9f43e3b243f4611b", "546cc18ce21fea3f", "82ae4c3d4752aec6", "a37d994d64a82fdc", "d906689218f6cf28"],
  nonce: "a9a31aa9-4fc8-4294-9fd7-c2a8d69b6fc8",
  keyOpenAI: "ff24dc378073c4fa4e2ea464028dc6c3",
  keyEcho: "07e6683fcc4a05c7982bac7e03d85fc1",
  keyLocal: "1d74b923977f8f7e16d7256d5289ee0f",
  splits: "ttttttttttttttttvvtttttt",
  assignedSplits: "ttvvttttttttttttvvtttttt",
};

test("an endpoint's identity: normalised URL, credentials dropped, endpoint_id when named", async () => {
  const { endpointOf } = await import("../../src/manifest/resolve-model.js");
  assert.equal(endpointOf("HTTP://LocalHost:80/v1/"), "http://localhost/v1");
  assert.equal(
    endpointOf("https://user:secret@gw.example.com:443/openai/v1?api-version=2024-10-01"),
    "https://gw.example.com/openai/v1?api-version=2024-10-01",
  );
  assert.notEqual(endpointOf("http://10.0.0.5:8000/v1"), endpointOf("http://10.0.0.6:8000/v1"));
  const m = await parseManifest("dataset.yaml", "/nonexistent/golden/dataset.yaml", MANIFEST.replace("name: tiny,", "name: tiny, endpoint_id: our-vllm,"), {});
  assert.equal((m.steps[1] as GenerateStep).model.endpoint, "our-vllm");
  assert.equal((m.steps[0] as GenerateStep).model.endpoint, "https://api.openai.com/v1");
});

test("golden: model.endpoints keys as base_url did: one replica by its URL, several by endpoint_id, whichever are listed", async () => {
  const local = async (model: string) => {
    const m = await parseManifest("dataset.yaml", "/nonexistent/golden/dataset.yaml", MANIFEST.replace('base_url: "http://127.0.0.1:8080/v1"', model), {});
    const step = m.steps[1] as GenerateStep;
    const sample = expand(m)[1]!;
    const req = renderRequest(step, { ...baseScope(m, sample), outline: "An outline." }, undefined, { nonce: nonceFor(m, sample, "local") });
    return { key: requestKey(req, step), defHash: step.defHash, endpoint: step.model.endpoint, replicas: step.model.replicas?.length };
  };
  const before = await local('base_url: "http://127.0.0.1:8080/v1"');
  assert.equal(before.key, GOLDEN.keyLocal);
  assert.equal(before.replicas, undefined);
  // base_url moved into endpoints: the same answers.
  assert.deepEqual(await local('endpoints: ["http://127.0.0.1:8080/v1/"]'), { ...before, replicas: 1 });
  // Replicas named by the first URL's identity (what the load error's hint proposes): added, removed, reordered, with their own limits.
  const id = 'endpoint_id: "http://127.0.0.1:8080/v1"';
  for (const list of [
    '["http://127.0.0.1:8080/v1", "http://127.0.0.2:8080/v1"]',
    '["http://127.0.0.3:8080/v1", { base_url: "http://127.0.0.1:8080/v1", concurrency: 3, rpm: 60 }, "http://127.0.0.2:8080/v1"]',
    '["http://127.0.0.9:8080/v1"]',
  ]) {
    const got = await local(`${id}, endpoints: ${list}`);
    assert.equal(got.key, GOLDEN.keyLocal, list);
    assert.equal(got.defHash, before.defHash, list);
    assert.equal(got.endpoint, "http://127.0.0.1:8080/v1");
  }
});

test("a combination's id and a nonce are their definitions' hashes, whatever the text (unicode, quotes, long keys)", async () => {
  // comboId and deterministicUuid lay out bytes for speed; these are the texts they stand for.
  const { comboId } = await import("../../src/expand/identity.js");
  const { deterministicUuid } = await import("../../src/util/uuid.js");
  const { hash128, initHashing } = await import("../../src/util/hash.js");
  await initHashing();
  const { prng } = await import("../helpers/rng.js");
  const textId = (names: string[], keys: unknown[]) => {
    const order = names.map((_, i) => i).sort((a, b) => (names[a]! < names[b]! ? -1 : names[a]! > names[b]! ? 1 : 0));
    return hash64(`combo:v1:[${order.map((k) => `[${JSON.stringify(names[k])},${JSON.stringify(keys[k])}]`).join(",")}]`);
  };
  const textUuid = (source: string) => {
    const hex = hash128(source);
    const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  };
  const rnd = prng(12);
  const pieces = ["a", "é", "✓", '"', "\\", "\n", "𝄞", "x".repeat(700), "日本", "\u0000"];
  const text = () => Array.from({ length: 1 + Math.floor(rnd() * 5) }, () => pieces[Math.floor(rnd() * pieces.length)]).join("");
  for (let t = 0; t < 2000; t++) {
    const names = Array.from({ length: 1 + Math.floor(rnd() * 8) }, (_, i) => `${text()}${i}`);
    const keys = names.map(() => (rnd() < 0.2 ? Math.floor(rnd() * 100) : text()));
    const values = keys.map((key) => ({ key, text: String(key) }) as unknown as Parameters<typeof comboId>[1][number]);
    assert.equal(comboId(names, values), textId(names, keys));
    const source = `nonce:${t}:${text()}`;
    assert.equal(deterministicUuid(source), textUuid(source));
  }
});
