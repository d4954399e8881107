import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { lockSamples, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

describe("batch mode: answers and refusals as a direct request has them", () => {
  const projects: TempProject[] = [];
  const servers: TestServer[] = [];
  after(async () => {
    for (const p of projects) await p.remove();
    for (const s of servers) await s.close();
  });

  test("one step by batch, the next direct: each asked for its own way, the rows as a direct build's", async () => {
    const s = await startTestServer({ answerWords: 12, batchStepMs: 30 });
    servers.push(s);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    const text = manifest({ samples: 5, twoSteps: true }).replace('generate: { prompt: "Outline', 'generate: { model: { mode: batch }, prompt: "Outline');
    assert.notEqual(text, manifest({ samples: 5, twoSteps: true }));
    const p = await TempProject.create({ "dataset.yaml": text });
    const direct = await TempProject.create({ "dataset.yaml": manifest({ samples: 5, twoSteps: true }) });
    projects.push(p, direct);
    const r = await runCli(["build"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1);
    assert.equal(s.batches.list()[0]!.customIds.length, 5);
    assert.equal(s.stats().requests, 5, "the expand step's 5, directly");
    assert.ok(s.requests.every((q) => String(q.body.messages[0].content).startsWith("Expand:")));
    assert.equal((await runCli(["build"], direct.dir, env)).status, 0);
    assert.equal(await p.read("dist/out.jsonl"), await direct.read("dist/out.jsonl"));
  });

  test("a refusal or a content filter's stop in a batch drops its sample with the reason a direct answer gives; a rejected key stops the build before any batch", async () => {
    const s = await startTestServer({ answerWords: 12, batchStepMs: 30, apiKey: "right" });
    servers.push(s);
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "right", ...POLL };
    s.batches.failLines({ match: "Outline v01", kind: "refusal" });
    s.batches.failLines({ match: "Outline v02", kind: "content_filter" });
    const p = await TempProject.create({ "dataset.yaml": manifest({ samples: 4, mode: "batch" }) });
    projects.push(p);
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    const json = JSON.parse(r.stdout);
    assert.equal(json.dropped, 2);
    assert.equal(json.outputs[0].rows, 2);
    assert.equal(s.batches.counts.batchesCreated, 1, "the model's answers: not asked again");
    const reasons = lockSamples(await p.read("dataset.lock"))
      .filter((x) => x.status === "dropped")
      .map((x) => x.reason.why)
      .sort();
    assert.equal(reasons.length, 2);
    assert.match(reasons.join(" | "), /content filter/i);
    assert.match(reasons.join(" | "), /refus/i);

    const q = await TempProject.create({ "dataset.yaml": manifest({ samples: 2, mode: "batch" }) });
    projects.push(q);
    const bad = await runCli(["build"], q.dir, { ...env, OPENAI_API_KEY: "wrong-key-123" });
    assert.equal(bad.status, 1, bad.stderr);
    assert.match(bad.stderr, /key/i);
    assert.doesNotMatch(bad.stderr, /wrong-key-123/);
    assert.equal(s.batches.counts.batchesCreated, 1);
    assert.equal(await q.exists("dataset.lock"), false);

    const down = await runCli(["build"], q.dir, { ...env, TEST_BASE_URL: "http://127.0.0.1:1/v1" });
    assert.equal(down.status, 1, down.stderr);
    assert.match(down.stderr, /cannot reach http:\/\/127\.0\.0\.1:1\/v1[\s\S]*the build stopped/);
  });
});
