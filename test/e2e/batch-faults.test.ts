import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { batchFiles, chatRequests, manifest, POLL } from "../helpers/batch.js";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

describe("batch mode: faults of the Batches API calls", () => {
  const projects: TempProject[] = [];
  const servers: TestServer[] = [];
  const project = async (files: Record<string, string>) => {
    const p = await TempProject.create(files);
    projects.push(p);
    return p;
  };
  const server = async (batchStepMs = 30) => {
    const s = await startTestServer({ answerWords: 12, batchStepMs });
    servers.push(s);
    return s;
  };
  after(async () => {
    for (const p of projects) await p.remove();
    for (const s of servers) await s.close();
  });

  test("a create whose answer is lost (made, then 502) is found by its input file, never made twice", async () => {
    const s = await server();
    const env = { TEST_BASE_URL: s.baseURL, OPENAI_API_KEY: "k", ...POLL };
    s.batches.failCalls({ call: "create", afterCreate: true, status: 502 });
    const p = await project({ "dataset.yaml": manifest({ samples: 4, mode: "batch" }) });
    const r = await runCli(["build", "--json"], p.dir, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(s.batches.counts.batchesCreated, 1, "one batch over the input file");
    assert.equal(JSON.parse(r.stdout).outputs[0].rows, 4);
    assert.equal(chatRequests(s), 0);
    assert.deepEqual(await batchFiles(p), []);
  });
});
