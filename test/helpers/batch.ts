import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after } from "node:test";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";
import { TempProject } from "./project.js";

/**
 * A suite's projects and batch-speaking test servers, removed and closed after it: `project(files)`,
 * `server(batchStepMs)` (how long each batch stage lasts; default 30 ms). Call inside a describe().
 */
export function batchFixture(): { project: (files: Record<string, string>) => Promise<TempProject>; server: (batchStepMs?: number) => Promise<TestServer> } {
  const projects: TempProject[] = [];
  const servers: TestServer[] = [];
  after(async () => {
    for (const p of projects) await p.remove();
    for (const s of servers) await s.close();
  });
  return {
    project: async (files) => {
      const p = await TempProject.create(files);
      projects.push(p);
      return p;
    },
    server: async (batchStepMs = 30) => {
      const s = await startTestServer({ answerWords: 12, batchStepMs });
      servers.push(s);
      return s;
    },
  };
}

/** Fast polls: the test server's batches move every `batchStepMs`. */
export const POLL = { SYNTHBUILD_BATCH_POLL_MS: "20" };

export function manifest(o: {
  samples: number;
  mode?: string;
  batchAbove?: number;
  twoSteps?: boolean;
  price?: boolean;
  schema?: boolean;
  /** model.timeout_s */
  timeoutS?: number;
  /** Characters of filler in each prompt (a big input file). */
  padding?: number;
}): string {
  const items = Array.from({ length: o.samples }, (_, i) => `v${String(i).padStart(2, "0")}`).join(", ");
  const mode = o.mode ? `\n  mode: ${o.mode}` : "";
  const above = o.batchAbove !== undefined ? `\n  batch_above: ${o.batchAbove}` : "";
  const price = o.price ? "\n  price: { input_per_mtok: 1000, output_per_mtok: 1000 }" : "";
  const timeout = o.timeoutS !== undefined ? `\n  timeout_s: ${o.timeoutS}` : "";
  const pad = o.padding ? ` ${"pad ".repeat(Math.ceil(o.padding / 4))}` : "";
  const schema = o.schema ? `, json_schema: { type: object, properties: { answer: { type: string } }, required: [answer] }` : "";
  return `version: 1
name: batch
seed: 3
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  params: { max_tokens: 30 }
  retries: 2${mode}${above}${price}${timeout}
dimensions:
  item: [${items}]
steps:
  - id: outline
    generate: { prompt: "Outline {{ item }} briefly${pad}"${schema} }
${
  o.twoSteps
    ? `  - id: expanded
    generate: { prompt: "Expand: {{ outline }}" }
`
    : ""
}output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ item }}", completion: "{{ ${o.twoSteps ? "expanded" : "outline"} }}" }
`;
}

export const chatRequests = (s: TestServer) => s.stats().requests;

export async function batchFiles(p: TempProject): Promise<string[]> {
  return (await readdir(join(p.dir, "cache", "state", "batches")).catch(() => [] as string[])).filter((f) => f.endsWith(".json"));
}

/** The sample lines of a lock's text. */
export function lockSamples(text: string): any[] {
  return text
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((x) => typeof x.id === "string" && x.steps);
}
