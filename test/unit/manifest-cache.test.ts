import assert from "node:assert/strict";
import { test } from "node:test";
import { parseManifest } from "../../src/manifest/load.js";

const text = (cache: string) => `version: 1
name: c
model: { provider: echo }
dimensions: { a: [x] }
steps: [{ id: s, generate: { prompt: "{{ a }}" } }]
output: { path: dist/o.jsonl, prompt: "{{ a }}", completion: "{{ s }}" }
${cache}`;

test("cache: settings are interpolated like model.* and a folder is made absolute", async () => {
  const m = await parseManifest("dataset.yaml", "/proj/dataset.yaml", text("cache:\n  remote: ${REMOTE}\n  endpoint: ${EP:-}\n  path_style: ${PS}\n"), {
    REMOTE: "s3://b/p",
    PS: "true",
  });
  assert.deepEqual(m.cache, { remote: "s3://b/p", pathStyle: true });
  const f = await parseManifest("dataset.yaml", "/proj/dataset.yaml", text("cache: { remote: ../shared }\n"), {});
  assert.deepEqual(f.cache, { remote: "/shared" });
  const none = await parseManifest("dataset.yaml", "/proj/dataset.yaml", text(""), {});
  assert.equal(none.cache, undefined);
});

test("an unknown cache: key is a positioned error", async () => {
  await assert.rejects(parseManifest("dataset.yaml", "/proj/dataset.yaml", text("cache: { remote: /x, bucket: b }\n"), {}), /dataset\.yaml:7:\d+ cache/);
});
