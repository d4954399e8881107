import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { parseEntry } from "../../src/cache/store.js";
import { initHashing } from "../../src/util/hash.js";
import { scanPacks } from "./cache-files.js";
import { BIN, type CliResult, cliEnv } from "./cli.js";

/** What the fault tests vary in a manifest; everything else is fixed so answers are deterministic. */
export interface FaultManifestOptions {
  /** number of samples: one dimension `item` with values w00, w01, … */
  samples: number;
  /** a second generate step (`expanded`) that reads the first */
  twoSteps?: boolean;
  concurrency?: number;
  retries?: number;
  timeoutS?: number;
  maxTokens?: number;
  price?: { input: number; output: number };
}

/** The item value of sample i: "w00", "w01", … (zero-padded so that "w03" never matches "w30"). */
export const item = (i: number): string => `w${String(i).padStart(2, "0")}`;

export function faultManifest(o: FaultManifestOptions): string {
  const items = Array.from({ length: o.samples }, (_, i) => item(i)).join(", ");
  const model = [
    `  provider: openai`,
    `  name: test-model`,
    `  base_url: \${TEST_BASE_URL}`,
    `  params: { temperature: 1, max_tokens: ${o.maxTokens ?? 40} }`,
    `  concurrency: ${o.concurrency ?? 4}`,
    `  retries: ${o.retries ?? 3}`,
    `  timeout_s: ${o.timeoutS ?? 10}`,
    ...(o.price ? [`  price: { input_per_mtok: ${o.price.input}, output_per_mtok: ${o.price.output} }`] : []),
  ];
  const steps = [
    `  - id: outline`,
    `    generate:`,
    `      prompt: "Outline item [{{ item }}] briefly."`,
    ...(o.twoSteps ? [`  - id: expanded`, `    generate:`, `      prompt: "Expand: {{ outline }}"`] : []),
  ];
  return [
    `version: 1`,
    `name: faults`,
    `seed: 7`,
    `model:`,
    ...model,
    `dimensions:`,
    `  item: [${items}]`,
    `steps:`,
    ...steps,
    `output:`,
    `  path: dist/out.jsonl`,
    `  format: openai-chat`,
    `  prompt: "Item {{ item }}"`,
    `  completion: "{{ ${o.twoSteps ? "expanded" : "outline"} }}"`,
    ``,
  ].join("\n");
}

export interface SpawnedCli {
  child: ChildProcessWithoutNullStreams;
  done: Promise<CliResult & { signal: NodeJS.Signals | null }>;
}

/**
 * Start the real binary without waiting for it (to signal it, or to run two at once). Bounded: a
 * process still running after `timeoutMs` (because the feature under test is broken and it hangs)
 * is killed, so the test fails instead of keeping the runner alive.
 */
export function spawnCli(args: string[], cwd: string, env: Record<string, string | undefined> = {}, timeoutMs = 15_000): SpawnedCli {
  const child = spawn(process.execPath, [BIN, ...args], { cwd, env: cliEnv(env) });
  let stdout = "";
  let stderr = "";
  let killed = false;
  child.stdout.on("data", (d) => (stdout += d));
  child.stderr.on("data", (d) => (stderr += d));
  const timer = setTimeout(() => {
    killed = true;
    child.kill("SIGKILL");
  }, timeoutMs);
  const done = new Promise<CliResult & { signal: NodeJS.Signals | null }>((resolve, reject) => {
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr: killed ? `${stderr}\n[test: killed after ${timeoutMs} ms]` : stderr });
    });
  });
  return { child, done };
}

/** `runCli` (async), bounded in time like `spawnCli`. */
export async function runCliBounded(args: string[], cwd: string, env: Record<string, string | undefined> = {}, timeoutMs = 15_000): Promise<CliResult> {
  const r = await spawnCli(args, cwd, env, timeoutMs).done;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Poll until `cond()` holds; throws after `timeoutMs` with `what` in the message. */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

/** Every file under `dir` (hidden ones too), as path relative to `dir` → content. */
export async function allFiles(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile()) out[relative(dir, p)] = await readFile(p, "utf8");
    }
  };
  await walk(dir);
  return out;
}

export interface CacheScan {
  /** keys of entries that parse and carry their own key */
  valid: string[];
  /** files that end in .json but do not parse, or hold another key */
  corrupt: string[];
  /** `.tmp-*` files (left by a killed writer) */
  strays: string[];
  /** anything else */
  other: string[];
  /** bytes in a pack that are no record: a write cut short by a killed writer (skipped by readers) */
  torn: string[];
}

/** Read every loose file and every pack of a project's cache and sort what they hold into valid entries, corrupt ones and strays. */
export async function scanCache(projectDir: string): Promise<CacheScan> {
  await initHashing();
  const scan: CacheScan = { valid: [], corrupt: [], strays: [], other: [], torn: [] };
  const objects = join(projectDir, "cache", "objects");
  for (const [rel, text] of Object.entries(await allFiles(objects))) {
    const name = rel.split("/").pop()!;
    if (name.includes(".tmp-")) scan.strays.push(rel);
    else if (name.endsWith(".json")) {
      const key = name.slice(0, -5);
      let ok = false;
      try {
        // An entry is its JSON, then a line with that JSON's checksum (checked by the store's own reader).
        const [json, sum, rest] = text.split("\n");
        const e = JSON.parse(json!);
        ok =
          e.key === key && rel.startsWith(`${key.slice(0, 2)}/`) && typeof e.response?.text === "string" && /^"xxh128:[0-9a-f]{32}"$/.test(sum!) && rest === "";
        ok &&= parseEntry(text, key) !== undefined;
      } catch {
        ok = false;
      }
      (ok ? scan.valid : scan.corrupt).push(ok ? key : rel);
    } else scan.other.push(rel);
  }
  const packed = await scanPacks(join(projectDir, "cache"));
  for (const k of packed.valid) if (!scan.valid.includes(k)) scan.valid.push(k);
  scan.corrupt.push(...packed.corrupt);
  scan.torn.push(...packed.torn);
  for (const f of await readdir(join(projectDir, "cache", "packs")).catch(() => [] as string[])) {
    if (f.includes(".tmp-")) scan.strays.push(`packs/${f}`);
    else if (!/^\d{6}\.pack$/.test(f)) scan.other.push(`packs/${f}`);
  }
  scan.valid.sort();
  return scan;
}

export interface LockSampleLine {
  id: string;
  status: "kept" | "dropped" | "failed" | "pending";
  values: Record<string, string>;
  reason?: { step: string; why: string };
  steps: Record<string, { key?: string; usage?: [number, number] }>;
}

/** The header and sample lines of a dataset.lock. */
export function parseLockText(text: string): { header: Record<string, unknown>; samples: LockSampleLine[] } {
  const lines = text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map((l) => JSON.parse(l));
  return { header: lines[0], samples: lines.filter((l) => typeof l.id === "string" && l.steps) };
}

/** The text of every message of a recorded request body, joined (what a fault's `match` sees). */
export function contentOf(body: any): string {
  return Array.isArray(body?.messages) ? body.messages.map((m: any) => String(m?.content ?? "")).join("\n") : "";
}
