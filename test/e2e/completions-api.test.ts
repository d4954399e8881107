import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** The tutorial's fine-tuning format, made as it was: a base model continuing a short prompt. */
const manifest = (api: string, extra = "") => `version: 1
name: base
model:
  provider: openai
  name: davinci-002
  base_url: \${TEST_BASE_URL}
  api: ${api}
  params: { max_tokens: 40, stop: ["\\n\\n"] }
dimensions:
  genre: [noir, western]
  place: [Kyoto]
steps:
  - id: outline
    generate:
      prompt: "Genre: {{ genre }}\\nLocation: {{ place }}\\n\\nPLOT OUTLINE:"
${extra}output: { path: dist/tune.jsonl, format: prompt-completion, prompt: "Genre: {{ genre }}\\nLocation: {{ place }}\\n\\nPLOT OUTLINE:", completion: " {{ outline }}" }
`;

describe("api: completions, for base models", () => {
  let server: TestServer;
  const projects: TempProject[] = [];
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" });
  before(async () => {
    server = await startTestServer({ answerWords: 8 });
  });
  after(async () => {
    await server.close();
    for (const p of projects) await p.remove();
  });

  test("requests go to /completions with the prompt string and stop; rows are prompt/completion; chat and completions answers never mix", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest("completions") });
    projects.push(p);
    server.reset();
    const r = await runCli(["build", "--json"], p.dir, env());
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).requests, 2);
    const sent = server.requests.filter((q) => q.status === 200);
    assert.deepEqual(
      sent.map((q) => q.url),
      ["/v1/completions", "/v1/completions"],
    );
    const bodies = sent.map((q) => q.body as { prompt: string; stop: string[]; messages?: unknown; model: string });
    assert.deepEqual(bodies.map((b) => b.prompt).sort(), ["Genre: noir\nLocation: Kyoto\n\nPLOT OUTLINE:", "Genre: western\nLocation: Kyoto\n\nPLOT OUTLINE:"]);
    assert.deepEqual(bodies[0]!.stop, ["\n\n"]);
    assert.equal(bodies[0]!.model, "davinci-002");
    const rows = (await p.read("dist/tune.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { prompt: string; completion: string });
    assert.equal(rows.length, 2);
    for (const row of rows) {
      assert.match(row.prompt, /^Genre: (noir|western)\nLocation: Kyoto\n\nPLOT OUTLINE:$/);
      assert.match(row.completion, /^ TEST ANSWER [0-9a-f]+:/);
    }
    // The same prompt through the chat API is another request: its answer is not the base model's.
    const before = server.stats().requests;
    await p.write({ "dataset.yaml": manifest("chat") });
    const chat = await runCli(["build", "--json"], p.dir, env());
    assert.equal(chat.status, 0, chat.stderr);
    assert.equal(server.stats().requests - before, 2);
    assert.ok(server.requests.slice(-2).every((q) => q.url === "/v1/chat/completions"));
    // And back: both answers are in the cache, so nothing is requested.
    await p.write({ "dataset.yaml": manifest("completions") });
    assert.equal(JSON.parse((await runCli(["build", "--json"], p.dir, env())).stdout).requests, 0);
  });

  test("system:, messages: or json_schema: with api: completions is refused before any request", async () => {
    for (const [extra, what] of [
      ['      system: "You write plots."\n', "system:"],
      ["      json_schema: { type: object }\n", "json_schema:"],
    ] as const) {
      const p = await TempProject.create({ "dataset.yaml": manifest("completions", extra) });
      projects.push(p);
      const before = server.stats().requests;
      const r = await runCli(["build"], p.dir, env());
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, new RegExp(`api: completions sends one prompt string: ${what} has no place in it`));
      assert.equal(server.stats().requests, before);
    }
  });
});
