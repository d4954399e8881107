/**
 * npm run bench — synthbuild against the physical limits, on this machine, in one run.
 *
 * Every figure is printed beside its ideal and the ratio (1.00 = at the limit), so results on
 * different machines compare. Workload as in ../shared/BENCHMARKS.md: 4 lists × 8 values, a
 * seeded sample of 2,000 of the 4,096 combinations, an OpenAI-compatible endpoint on loopback
 * (the project's test server, in its own process) with 200 ms latency, concurrency 64.
 *
 *   npm run bench                 # everything (about two minutes)
 *   npm run bench -- cold rpm     # only the named runs: cold, noop, edit, rpm, noop100k, plan1m, cold100k, pushpull,
 *                                 # the gateway runs: rpm-1s, rpm-undeclared, inflight, shared, replicas,
 *                                 # and the spaces past the product: space-sample, space-pairwise
 *   npm run bench -- transport    # the transports compared: cold and 0 ms latency, 3 runs each
 *   npm run bench -- batch        # model.mode: batch against the test server's Batch API
 */
import { spawn } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUCKET, S3_CREDENTIALS, TestS3 } from "../test/helpers/s3.js";

// The bench's own S3 clients (bare SDK PUTs and GETs): no Node 20 notice amid the figures, as in s3.ts.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
const REPO = fileURLToPath(new URL("../", import.meta.url));
const BIN = join(REPO, "bin/synthbuild.js");
const LATENCY_MS = 200;
const CONCURRENCY = 64;
const N = 2000;

interface Run {
  wallS: number;
  peakRssMb: number;
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Run the CLI, timing it and sampling its peak RSS (VmHWM) from /proc while it runs. */
function cli(args: string[], cwd: string, env: Record<string, string> = {}, nodeArgs: string[] = []): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, [...nodeArgs, BIN, ...args], { cwd, env: { ...process.env, CI: "true", ...env } });
    let stdout = "";
    let stderr = "";
    let peakKb = 0;
    const sample = async () => {
      try {
        const status = await readFile(`/proc/${child.pid}/status`, "utf8");
        const m = /VmHWM:\s+(\d+)/.exec(status);
        if (m) peakKb = Math.max(peakKb, Number(m[1]));
      } catch {
        // exited
      }
    };
    const timer = setInterval(() => void sample(), 10);
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("exit", () => void sample());
    child.on("close", (status) => {
      clearInterval(timer);
      resolve({ wallS: Number(process.hrtime.bigint() - started) / 1e9, peakRssMb: peakKb / 1024, status, stdout, stderr });
    });
  });
}

async function startServer(args: string[]): Promise<{ baseURL: string; url: string; stop: () => void }> {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "test/server/main.ts"), ...args], { cwd: REPO, stdio: ["ignore", "pipe", "inherit"] });
  const line = await new Promise<string>((resolve, reject) => {
    let buf = "";
    child.stdout.on("data", (d) => {
      buf += d;
      if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
    });
    child.on("exit", (c) => reject(new Error(`test server exited with ${c}`)));
  });
  const { baseURL, url } = JSON.parse(line) as { baseURL: string; url: string };
  return { baseURL, url, stop: () => child.kill("SIGTERM") };
}

async function serverStats(url: string): Promise<{ requests: number; answered: number; refused429: number; maxInFlight: number }> {
  return (await fetch(`${url}/__control/stats`)).json() as Promise<{ requests: number; answered: number; refused429: number; maxInFlight: number }>;
}

/** From the first request's arrival to the last answer (last answered arrival + latency): the build's throughput without process start-up. */
async function requestPhaseS(url: string): Promise<number> {
  const { requests } = (await (await fetch(`${url}/__control/requests`)).json()) as { requests: { at: number; status: number }[] };
  const at = requests.map((r) => r.at);
  const answered = requests.filter((r) => r.status === 200).map((r) => r.at);
  return (Math.max(...answered) + LATENCY_MS - Math.min(...at)) / 1000;
}

/** A build whose failed samples are a figure, not an error: `--json`'s `failed` (exit 1 is expected when some failed). */
function failedOf(r: Run, what: string): number {
  if (r.status !== 0 && r.status !== 1) throw new Error(`${what} exited ${r.status}:\n${r.stderr}`);
  try {
    return (JSON.parse(r.stdout) as { failed: number }).failed;
  } catch {
    throw new Error(`${what} printed no JSON (exit ${r.status}):\n${r.stderr}`);
  }
}

const letters = ["a", "b", "c", "d"];
function manifest(o: { baseURL: string; rpm?: number; n?: number; edit?: boolean; name?: string; seed?: number; values?: number }): string {
  const lists = letters
    .map((l) => `  ${l}: [${Array.from({ length: o.values ?? 8 }, (_, i) => (o.edit && l === "a" && i === 0 ? "edited" : `${l}${i}`)).join(", ")}]`)
    .join("\n");
  return `version: 1
name: ${o.name ?? "bench"}
seed: ${o.seed ?? 1}
model:
  provider: openai
  name: bench-model
  base_url: ${o.baseURL}
  params: { temperature: 1, max_tokens: 100 }
  concurrency: ${CONCURRENCY}
  retries: 6
${o.rpm ? `  rpm: ${o.rpm}\n` : ""}dimensions:
${lists}
combine: { mode: sample, n: ${o.n ?? N} }
steps:
  - id: answer
    generate:
      prompt: "{{ nonce }} Write about {{ a }}, {{ b }}, {{ c }} and {{ d }}."
output: { path: dist/bench.jsonl, format: prompt-completion, prompt: "{{ a }} {{ b }} {{ c }} {{ d }}", completion: "{{ answer }}" }
`;
}

const results: { name: string; figure: string; ideal: string; ratio: string; target: string; ok: boolean }[] = [];
function report(name: string, figure: string, ideal: string, ratio: number | undefined, target: string, ok: boolean): void {
  results.push({ name, figure, ideal, ratio: ratio === undefined ? "" : ratio.toFixed(2), target, ok });
  process.stderr.write(`  ${ok ? "ok  " : "MISS"} ${name}: ${figure}${ideal ? ` (ideal ${ideal}, ratio ${ratio?.toFixed(2)})` : ""}; target ${target}\n`);
}

/**
 * A build over `endpoints:`, one test server per spec (refusing beyond its limit in flight, at its
 * latency), each replica's concurrency its server's limit. The ideal: n over the sum of limit / latency.
 */
async function replicaRun(
  n: number,
  specs: { inFlight: number; latencyMs: number }[],
): Promise<{ wallS: number; phaseS: number; ideal: number; failed: number; figure: string }> {
  const servers = await Promise.all(specs.map((r) => startServer(["--latency", String(r.latencyMs), "--max-in-flight", String(r.inFlight)])));
  try {
    const d = await mkdtemp(join(tmpdir(), "synthbuild-bench-"));
    try {
      const endpoints = servers.map((r, i) => `    - { base_url: "${r.baseURL}", concurrency: ${specs[i]!.inFlight} }`).join("\n");
      const text = manifest({ baseURL: "REPLICAS", n, name: "bench-replicas" }).replace(
        "  base_url: REPLICAS\n",
        `  endpoint_id: bench-pool\n  endpoints:\n${endpoints}\n`,
      );
      await writeFile(join(d, "dataset.yaml"), text);
      const r = await cli(["build", "-q", "--json"], d, { OPENAI_API_KEY: "bench" });
      const failed = failedOf(r, `build against ${specs.length} replica(s)`);
      const stats = await Promise.all(servers.map((x) => serverStats(x.url)));
      // From the first request's arrival at any replica to the last answer of any.
      const seen = await Promise.all(
        servers.map(async (x, i) => {
          const { requests } = (await (await fetch(`${x.url}/__control/requests`)).json()) as { requests: { at: number; status: number }[] };
          return {
            first: Math.min(...requests.map((q) => q.at)),
            last: Math.max(...requests.filter((q) => q.status === 200).map((q) => q.at)) + specs[i]!.latencyMs,
          };
        }),
      );
      const phase = (Math.max(...seen.map((x) => x.last)) - Math.min(...seen.map((x) => x.first))) / 1000;
      const split = stats.map((x, i) => `${x.answered} (${specs[i]!.inFlight}/${specs[i]!.latencyMs} ms)`).join(" + ");
      const refused = stats.reduce((x, y) => x + y.refused429, 0);
      return {
        wallS: r.wallS,
        phaseS: phase,
        ideal: n / specs.reduce((sum, x) => sum + (x.inFlight * 1000) / x.latencyMs, 0),
        failed,
        figure: `${r.wallS.toFixed(2)} s (requests ${phase.toFixed(2)} s), answers ${split}, ${failed} failed, ${refused} refused`,
      };
    } finally {
      await rm(d, { recursive: true, force: true });
    }
  } finally {
    for (const x of servers) x.stop();
  }
}

/**
 * What the S3 server itself allows: every object under `prefix` fetched, then stored again under
 * another prefix, through the AWS SDK alone, 16 at once (synthbuild's transfer concurrency).
 */
async function bareSdk(endpoint: string, prefix: string): Promise<{ getS: number; putS: number }> {
  const sdk = await import("@aws-sdk/client-s3");
  const client = new sdk.S3Client({
    endpoint,
    forcePathStyle: true,
    region: S3_CREDENTIALS.AWS_REGION,
    credentials: { accessKeyId: S3_CREDENTIALS.AWS_ACCESS_KEY_ID, secretAccessKey: S3_CREDENTIALS.AWS_SECRET_ACCESS_KEY },
  });
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new sdk.ListObjectsV2Command({ Bucket: BUCKET, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) keys.push(o.Key!);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  const bodies = new Map<string, Uint8Array>();
  const timed = async (work: (key: string) => Promise<void>) => {
    const started = process.hrtime.bigint();
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < keys.length) await work(keys[next++]!);
      }),
    );
    return Number(process.hrtime.bigint() - started) / 1e9;
  };
  const getS = await timed(async (key) => {
    const r = await client.send(new sdk.GetObjectCommand({ Bucket: BUCKET, Key: key }));
    bodies.set(key, await r.Body!.transformToByteArray());
  });
  const putS = await timed(async (key) => {
    await client.send(new sdk.PutObjectCommand({ Bucket: BUCKET, Key: `bare/${key}`, Body: bodies.get(key)!, IfNoneMatch: "*" }));
  });
  client.destroy();
  return { getS, putS };
}

/**
 * The CLI with bench/usage-probe.mjs preloaded: its own CPU time and peak RSS as it reads them
 * at exit (the machine is shared: CPU seconds say more than wall time when others are busy).
 */
async function probed(args: string[], cwd: string, what: string): Promise<{ r: Run; u: { cpuS: number; maxRssMb: number } }> {
  const file = join(cwd, "usage.json");
  const r = must(await cli(args, cwd, { BENCH_USAGE_FILE: file }, ["--import", join(REPO, "bench/usage-probe.mjs")]), what);
  return { r, u: JSON.parse(await readFile(file, "utf8")) as { cpuS: number; maxRssMb: number } };
}

function must(r: Run, what: string): Run {
  if (r.status !== 0) throw new Error(`${what} exited ${r.status}:\n${r.stderr}`);
  return r;
}

/**
 * Gateway runs refuse as OpenAI does, with only the x-ratelimit-* headers and no retry-after
 * (the harder case: the client must pace by the stated limits); BENCH_RETRY_AFTER=1 adds
 * retry-after and retry-after-ms to every refusal, as Azure sends them.
 */
const GATEWAY_STYLE = process.env.BENCH_RETRY_AFTER ? [] : ["--no-retry-after"];

const wanted = new Set(process.argv.slice(2));
const want = (name: string) => wanted.size === 0 || wanted.has(name);

const server = await startServer(["--latency", String(LATENCY_MS)]);
const dirs: string[] = [];
const tmp = async () => {
  const d = await mkdtemp(join(tmpdir(), "synthbuild-bench-"));
  dirs.push(d);
  return d;
};
try {
  process.stderr.write(`synthbuild bench: ${N} requests, ${LATENCY_MS} ms latency, concurrency ${CONCURRENCY}\n`);
  const dir = await tmp();
  await writeFile(join(dir, "dataset.yaml"), manifest({ baseURL: server.baseURL }));
  const env = { OPENAI_API_KEY: "bench" };

  if (want("cold") || want("noop") || want("edit")) {
    await fetch(`${server.url}/__control/reset`, { method: "POST" });
    const cold = must(await cli(["build", "-q"], dir, env), "cold build");
    const s = await serverStats(server.url);
    const ideal = (s.requests * LATENCY_MS) / 1000 / CONCURRENCY;
    report(
      "cold build, whole command",
      `${cold.wallS.toFixed(2)} s for ${s.requests} requests (max in flight ${s.maxInFlight}), ${cold.peakRssMb.toFixed(0)} MB`,
      `${ideal.toFixed(2)} s`,
      ideal / cold.wallS,
      "≥ 0.90 of ideal",
      ideal / cold.wallS >= 0.9,
    );
    const phase = await requestPhaseS(server.url);
    report(
      "cold build, request phase",
      `${phase.toFixed(2)} s from first request to last answer`,
      `${ideal.toFixed(2)} s`,
      ideal / phase,
      "≥ 0.95 of ideal",
      ideal / phase >= 0.95,
    );

    const noop = must(await cli(["build", "-q"], dir, env), "no-op build");
    report(
      "no-op rebuild (2,000)",
      `${noop.wallS.toFixed(2)} s, ${noop.peakRssMb.toFixed(0)} MB`,
      "",
      undefined,
      "no requests",
      (await serverStats(server.url)).requests === s.requests,
    );

    await fetch(`${server.url}/__control/reset`, { method: "POST" });
    await writeFile(join(dir, "dataset.yaml"), manifest({ baseURL: server.baseURL, edit: true }));
    const edit = must(await cli(["build", "-q"], dir, env), "edited build");
    const e = await serverStats(server.url);
    const eIdeal = (Math.ceil(e.requests / CONCURRENCY) * LATENCY_MS) / 1000;
    report(
      "one value edited",
      `${edit.wallS.toFixed(2)} s for ${e.requests} requests`,
      `${eIdeal.toFixed(2)} s`,
      eIdeal / edit.wallS,
      "no overhead worth measuring beyond its requests",
      edit.wallS - eIdeal < 0.6,
    );
  }

  if (wanted.has("transport")) {
    // Only when named: 12 builds. Each transport's runs alternate with the other's, so a busy
    // moment on the shared machine falls on both.
    const PROBE = join(REPO, "bench/usage-probe.mjs");
    const transports = ["undici", "http"] as const;
    const RUNS = 3;
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
    const spread = (xs: number[]) => `${Math.min(...xs).toFixed(2)}–${Math.max(...xs).toFixed(2)}`;
    const fast = await startServer(["--latency", "0"]);
    try {
      for (const c of [
        { label: `cold build, ${N} requests, ${LATENCY_MS} ms latency`, srv: server, n: N, latency: LATENCY_MS },
        { label: "cold build, 5000 requests, 0 ms latency", srv: fast, n: 5000, latency: 0 },
      ]) {
        const runs = new Map<string, { wallS: number; cpuS: number; rssMb: number }[]>(transports.map((t) => [t, []]));
        for (let i = 0; i < RUNS; i++) {
          for (const t of transports) {
            const d = await tmp();
            // 9 values a list: 6,561 combinations, enough for 5,000 samples.
            await writeFile(join(d, "dataset.yaml"), manifest({ baseURL: c.srv.baseURL, n: c.n, values: 9, name: `bench-${t}` }));
            const usage = join(d, "usage.json");
            const r = must(await cli(["build", "-q"], d, { ...env, SYNTHBUILD_TRANSPORT: t, BENCH_USAGE_FILE: usage }, ["--import", PROBE]), `${t} build`);
            const u = JSON.parse(await readFile(usage, "utf8")) as { cpuS: number; maxRssMb: number };
            runs.get(t)!.push({ wallS: r.wallS, cpuS: u.cpuS, rssMb: u.maxRssMb });
            process.stderr.write(`    ${c.label}, ${t} #${i + 1}: ${r.wallS.toFixed(2)} s wall, ${u.cpuS.toFixed(2)} s CPU, ${u.maxRssMb.toFixed(0)} MB\n`);
          }
        }
        const m = Object.fromEntries(
          transports.map((t) => {
            const rs = runs.get(t)!;
            return [t, { wall: rs.map((r) => r.wallS), cpu: rs.map((r) => r.cpuS), rss: rs.map((r) => r.rssMb) }];
          }),
        ) as Record<(typeof transports)[number], { wall: number[]; cpu: number[]; rss: number[] }>;
        const ideal = c.latency ? (c.n * c.latency) / 1000 / CONCURRENCY : 0;
        for (const t of transports) {
          report(
            `${c.label}, ${t}`,
            `median of ${RUNS}: ${median(m[t].wall).toFixed(2)} s wall (${spread(m[t].wall)}), ${median(m[t].cpu).toFixed(2)} s CPU (${spread(m[t].cpu)}), ${median(m[t].rss).toFixed(0)} MB peak RSS (${spread(m[t].rss)})`,
            ideal ? `${ideal.toFixed(2)} s` : "",
            ideal ? ideal / median(m[t].wall) : undefined,
            "a figure",
            true,
          );
        }
        report(
          `${c.label}, http / undici`,
          `wall ${(median(m.http.wall) / median(m.undici.wall)).toFixed(3)}, CPU ${(median(m.http.cpu) / median(m.undici.cpu)).toFixed(3)}, peak RSS ${(median(m.http.rss) / median(m.undici.rss)).toFixed(3)}`,
          "",
          undefined,
          "a figure",
          true,
        );
      }
      // The transport alone, in this process (the server is in its own): CPU a request as the
      // SDK uses it (a JSON POST, the answer read with .json()), 64 in flight, 0 ms latency.
      const { createHttpFetch } = await import("../src/providers/http-fetch.js");
      const { createFetch } = await import("../src/providers/undici-fetch.js");
      const fetches = { http: createHttpFetch({ env: {} }), undici: createFetch({ env: {} }) };
      const body = JSON.stringify({ model: "bench-model", messages: [{ role: "user", content: "Write about a0, b0, c0 and d0." }], max_tokens: 100 });
      const perRequest = new Map<string, number[]>(transports.map((t) => [t, []]));
      const REQUESTS = 5000;
      for (let i = 0; i < RUNS; i++) {
        for (const t of transports) {
          let next = 0;
          const before = process.cpuUsage();
          await Promise.all(
            Array.from({ length: CONCURRENCY }, async () => {
              while (next++ < REQUESTS) {
                const r = await fetches[t](`${fast.baseURL}/chat/completions`, {
                  method: "POST",
                  headers: { "content-type": "application/json", authorization: "Bearer bench" },
                  body,
                });
                await r.json();
              }
            }),
          );
          const used = process.cpuUsage(before);
          perRequest.get(t)!.push((used.user + used.system) / 1000 / REQUESTS);
        }
      }
      for (const t of transports) {
        const xs = perRequest.get(t)!;
        report(
          `the transport alone, ${t}`,
          `median of ${RUNS}: ${median(xs).toFixed(3)} ms CPU a request (${xs.map((x) => x.toFixed(3)).join(", ")})`,
          "",
          undefined,
          "a figure",
          true,
        );
      }
    } finally {
      fast.stop();
    }
  }

  if (want("rpm")) {
    const rpm = 6000;
    const limited = await startServer(["--latency", String(LATENCY_MS), "--rpm", String(rpm)]);
    try {
      const d = await tmp();
      await writeFile(join(d, "dataset.yaml"), manifest({ baseURL: limited.baseURL, rpm, name: "bench-rpm" }));
      const r = must(await cli(["build", "-q"], d, env), "rate-limited build");
      const s = await serverStats(limited.url);
      const ideal = (N / rpm) * 60;
      report(
        `rpm ${rpm} limit`,
        `${r.wallS.toFixed(2)} s, ${s.refused429} requests refused with 429`,
        `${ideal.toFixed(2)} s`,
        ideal / r.wallS,
        "≥ 0.95 of ideal and 0 refused",
        ideal / r.wallS >= 0.95 && s.refused429 === 0,
      );
    } finally {
      limited.stop();
    }
  }

  // Rate limits as real gateways enforce them (targets of the endpoint-failures issue).
  if (want("rpm-1s")) {
    const rpm = 6000;
    const limited = await startServer(["--latency", String(LATENCY_MS), "--rpm", String(rpm), "--enforce-over-ms", "1000", ...GATEWAY_STYLE]);
    try {
      const d = await tmp();
      await writeFile(join(d, "dataset.yaml"), manifest({ baseURL: limited.baseURL, rpm, name: "bench-rpm-1s" }));
      const r = await cli(["build", "-q", "--json"], d, env);
      const failed = failedOf(r, "rpm build, enforced per second");
      const s = await serverStats(limited.url);
      // The physical limit: the last of N requests starts (N - 1) intervals after the first and takes the latency.
      const ideal = ((N - 1) / rpm) * 60 + LATENCY_MS / 1000;
      const refused = s.refused429 / s.requests;
      report(
        `rpm ${rpm} declared, enforced as ${rpm / 60}/s`,
        `${r.wallS.toFixed(2)} s (requests ${(await requestPhaseS(limited.url)).toFixed(2)} s), ${s.refused429} of ${s.requests} requests refused (${(refused * 100).toFixed(1)}%), ${failed} failed`,
        `${ideal.toFixed(2)} s`,
        ideal / r.wallS,
        "≥ 0.95 of ideal, ≤ 1% refused",
        ideal / r.wallS >= 0.95 && refused <= 0.01 && failed === 0,
      );
    } finally {
      limited.stop();
    }
  }

  if (want("rpm-undeclared")) {
    const rpm = 300;
    const n = 120;
    const limited = await startServer(["--latency", String(LATENCY_MS), "--rpm", String(rpm), "--enforce-over-ms", "1000", ...GATEWAY_STYLE]);
    try {
      const d = await tmp();
      await writeFile(join(d, "dataset.yaml"), manifest({ baseURL: limited.baseURL, n, name: "bench-rpm-undeclared" }));
      const r = await cli(["build", "-q", "--json"], d, env);
      const failed = failedOf(r, "rpm build, limit not declared");
      const s = await serverStats(limited.url);
      const ideal = ((n - 1) / rpm) * 60 + LATENCY_MS / 1000;
      report(
        `rpm ${rpm} not declared (stated by the server, enforced per second), ${n} samples`,
        `${r.wallS.toFixed(2)} s (requests ${(await requestPhaseS(limited.url)).toFixed(2)} s), ${failed} failed, ${s.refused429} refused`,
        `${ideal.toFixed(2)} s`,
        ideal / r.wallS,
        "≥ 0.90 of ideal, 0 failed",
        ideal / r.wallS >= 0.9 && failed === 0,
      );
    } finally {
      limited.stop();
    }
  }

  if (want("inflight")) {
    const k = 3;
    const n = 120;
    const limited = await startServer(["--latency", String(LATENCY_MS), "--max-in-flight", String(k)]);
    try {
      const d = await tmp();
      await writeFile(join(d, "dataset.yaml"), manifest({ baseURL: limited.baseURL, n, name: "bench-inflight" }));
      const r = await cli(["build", "-q", "--json"], d, env);
      const failed = failedOf(r, "build against a concurrency-limited server");
      const s = await serverStats(limited.url);
      const ideal = (n * LATENCY_MS) / 1000 / k;
      const phase = await requestPhaseS(limited.url);
      report(
        `server allowing ${k} in flight, ${n} samples`,
        `${r.wallS.toFixed(2)} s (requests ${phase.toFixed(2)} s), ${failed} failed, ${s.refused429} refused`,
        `${ideal.toFixed(2)} s`,
        // A throughput (limit / latency is a rate): over the request phase, not the process's start-up.
        ideal / phase,
        `≥ 0.90 of limit / latency (throughput over the requests; of the wall time ${(ideal / r.wallS).toFixed(2)})`,
        ideal / phase >= 0.9 && failed === 0,
      );
    } finally {
      limited.stop();
    }
  }

  if (want("replicas")) {
    // Three replicas of one model, each refusing more than its own limit in flight, at its own
    // latency: throughput should add up to the sum of each one's limit / latency. Beside it, one
    // endpoint of the same capacity, measured in the same minute: what this machine allows now.
    const n = 900;
    const three = await replicaRun(n, [
      { inFlight: 4, latencyMs: 200 },
      { inFlight: 4, latencyMs: 100 },
      { inFlight: 8, latencyMs: 200 },
    ]);
    report(
      `three replicas, ${n} samples`,
      three.figure,
      `${three.ideal.toFixed(2)} s`,
      three.ideal / three.phaseS,
      `≥ 0.90 of the sum of the replicas' limit / latency (throughput over the requests; of the wall time ${(three.ideal / three.wallS).toFixed(2)})`,
      three.ideal / three.phaseS >= 0.9 && three.failed === 0,
    );
    const one = await replicaRun(n, [{ inFlight: 16, latencyMs: 160 }]);
    report(
      `one endpoint of the same capacity, ${n} samples`,
      one.figure,
      `${one.ideal.toFixed(2)} s`,
      one.ideal / one.phaseS,
      `for comparison: the replicas' ratio should be no lower (of the wall time ${(one.ideal / one.wallS).toFixed(2)})`,
      one.failed === 0,
    );
  }

  if (want("shared")) {
    // Two builds, one key, one limit: each declares the key's whole rpm, so together they ask twice what it allows.
    const rpm = 1200;
    const n = 100;
    const limited = await startServer(["--latency", String(LATENCY_MS), "--rpm", String(rpm), "--enforce-over-ms", "1000", ...GATEWAY_STYLE]);
    try {
      const [d1, d2] = [await tmp(), await tmp()];
      await writeFile(join(d1, "dataset.yaml"), manifest({ baseURL: limited.baseURL, rpm, n, name: "bench-shared-1", seed: 1 }));
      await writeFile(join(d2, "dataset.yaml"), manifest({ baseURL: limited.baseURL, rpm, n, name: "bench-shared-2", seed: 2 }));
      const started = process.hrtime.bigint();
      const [r1, r2] = await Promise.all([cli(["build", "-q", "--json"], d1, env), cli(["build", "-q", "--json"], d2, env)]);
      const wallS = Number(process.hrtime.bigint() - started) / 1e9;
      const failed = failedOf(r1, "first shared build") + failedOf(r2, "second shared build");
      const s = await serverStats(limited.url);
      const ideal = ((2 * n) / rpm) * 60;
      report(
        `two builds sharing one ${rpm} rpm limit (per second), ${n} samples each`,
        `${wallS.toFixed(2)} s, ${failed} failed, ${s.refused429} refused`,
        `${ideal.toFixed(2)} s`,
        ideal / wallS,
        "0 failed",
        failed === 0 && s.answered === 2 * n,
      );
    } finally {
      limited.stop();
    }
  }

  if (want("noop100k")) {
    const d = await tmp();
    const lists = ["a", "b", "c", "d", "e"].map((l) => `  ${l}: [${Array.from({ length: 10 }, (_, i) => `${l}${i}`).join(", ")}]`).join("\n");
    await writeFile(
      join(d, "dataset.yaml"),
      `version: 1\nname: big\nmodel: { provider: echo }\ndimensions:\n${lists}\nsteps:\n  - id: s\n    generate: { prompt: "{{ nonce }} {{ a }} {{ b }} {{ c }} {{ d }} {{ e }}", model: { params: { max_tokens: 60 } } }\noutput: { path: dist/x.jsonl, format: prompt-completion, prompt: "{{ a }} {{ b }}", completion: "{{ s }}" }\n`,
    );
    const cold = must(await cli(["build", "-q"], d), "100k offline build");
    process.stderr.write(`  (100,000 samples built offline in ${cold.wallS.toFixed(1)} s, ${cold.peakRssMb.toFixed(0)} MB)\n`);
    const noop = must(await cli(["build", "-q", "--json"], d), "100k no-op");
    const requests = (JSON.parse(noop.stdout) as { requests: number }).requests;
    const floor = must(await cli(["--version"], d), "start-up");
    report(
      "no-op rebuild (100,000)",
      `${noop.wallS.toFixed(2)} s, ${noop.peakRssMb.toFixed(0)} MB, ${requests} requests`,
      `${floor.wallS.toFixed(2)} s start-up`,
      floor.wallS / noop.wallS,
      "< 1.5 s and < 300 MB (stretch: 0.3 s)",
      noop.wallS < 1.5 && noop.peakRssMb < 300 && requests === 0,
    );
    // The same without the up-to-date stamp: the full check (recipes against the lock).
    await rm(join(d, "cache/state/stamps"), { recursive: true, force: true });
    const full = must(await cli(["build", "-q", "--json"], d), "100k no-op, full check");
    report(
      "no-op rebuild (100,000), no stamp",
      `${full.wallS.toFixed(2)} s, ${full.peakRssMb.toFixed(0)} MB, ${(JSON.parse(full.stdout) as { requests: number }).requests} requests`,
      `${floor.wallS.toFixed(2)} s start-up`,
      floor.wallS / full.wallS,
      "< 1.5 s and < 300 MB",
      full.wallS < 1.5 && full.peakRssMb < 300,
    );
  }

  if (want("plan1m")) {
    const d = await tmp();
    const lists = ["a", "b", "c", "d", "e", "f"].map((l) => `  ${l}: [${Array.from({ length: 10 }, (_, i) => `${l}${i}`).join(", ")}]`).join("\n");
    await writeFile(
      join(d, "dataset.yaml"),
      `version: 1\nname: mil\nmodel: { name: gpt-4o-mini }\ndimensions:\n${lists}\nsteps:\n  - id: s\n    generate: { prompt: "{{ nonce }} {{ a }} {{ b }} {{ c }} {{ d }} {{ e }} {{ f }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ a }}", completion: "{{ s }}" }\n`,
    );
    const r = must(await cli(["plan", "--json"], d), "plan 1M");
    report(
      "plan 1,000,000 samples",
      `${r.wallS.toFixed(2)} s, ${r.peakRssMb.toFixed(0)} MB`,
      "",
      undefined,
      "≤ 15 s and ≤ 1 GB",
      r.wallS <= 15 && r.peakRssMb <= 1024,
    );
  }
  if (want("cold100k")) {
    // Client overhead at scale: 100,000 requests to an endpoint answering in 5 ms, so the client's
    // own CPU per request (read at exit by the usage probe, over all threads) is what is measured.
    const fast = await startServer(["--latency", "5"]);
    try {
      const d = await tmp();
      const lists = ["a", "b", "c", "d", "e"].map((l) => `  ${l}: [${Array.from({ length: 10 }, (_, i) => `${l}${i}`).join(", ")}]`).join("\n");
      await writeFile(
        join(d, "dataset.yaml"),
        `version: 1\nname: cold100k\nmodel: { name: bench-model, base_url: "${fast.baseURL}", concurrency: ${CONCURRENCY}, params: { max_tokens: 100 } }\ndimensions:\n${lists}\nsteps:\n  - id: s\n    generate: { prompt: "{{ nonce }} {{ a }} {{ b }} {{ c }} {{ d }} {{ e }}" }\noutput: { path: dist/x.jsonl, format: prompt-completion, prompt: "{{ a }} {{ b }} {{ c }} {{ d }} {{ e }}", completion: "{{ s }}" }\n`,
      );
      const usage = join(d, "usage.json");
      const r = must(
        await cli(["build", "-q", "--json"], d, { ...env, BENCH_USAGE_FILE: usage }, ["--import", join(REPO, "bench/usage-probe.mjs")]),
        "100k cold build",
      );
      const u = JSON.parse(await readFile(usage, "utf8")) as { cpuS: number; maxRssMb: number; threads?: { mainS: number; otherS: number } };
      const requests = (JSON.parse(r.stdout) as { requests: number }).requests;
      const perRequestMs = (u.cpuS * 1000) / requests;
      const ideal = (requests * 5) / 1000 / CONCURRENCY;
      const split = u.threads
        ? `; main thread ${((u.threads.mainS * 1000) / requests).toFixed(3)} ms, other threads ${((u.threads.otherS * 1000) / requests).toFixed(3)} ms`
        : "";
      report(
        "cold build, 100,000 requests at 5 ms latency",
        `${r.wallS.toFixed(1)} s wall, ${u.cpuS.toFixed(1)} s CPU (${perRequestMs.toFixed(3)} ms a request${split}), ${u.maxRssMb.toFixed(0)} MB peak RSS`,
        `${ideal.toFixed(2)} s`,
        ideal / r.wallS,
        "≤ 0.5 ms CPU a request, ≤ 1 GB peak RSS",
        requests === 100_000 && perRequestMs <= 0.5 && u.maxRssMb <= 1024,
      );
      // The same build with a young generation of 32 MB a semi-space (Node's default is 16): the
      // in-flight requests' objects are copied by fewer scavenges. A figure, for users of large
      // builds (NODE_OPTIONS=--max-semi-space-size=32), not the target's measure.
      {
        const d2 = await tmp();
        await writeFile(join(d2, "dataset.yaml"), await readFile(join(d, "dataset.yaml"), "utf8"));
        const usage2 = join(d2, "usage.json");
        must(
          await cli(["build", "-q", "--json"], d2, { ...env, BENCH_USAGE_FILE: usage2 }, [
            "--max-semi-space-size=32",
            "--import",
            join(REPO, "bench/usage-probe.mjs"),
          ]),
          "100k cold build, 32 MB semi-spaces",
        );
        const u2 = JSON.parse(await readFile(usage2, "utf8")) as { cpuS: number; maxRssMb: number };
        report(
          "the same with NODE_OPTIONS=--max-semi-space-size=32",
          `${u2.cpuS.toFixed(1)} s CPU (${((u2.cpuS * 1000) / requests).toFixed(3)} ms a request), ${u2.maxRssMb.toFixed(0)} MB peak RSS`,
          "",
          undefined,
          "a figure: what a larger young generation saves",
          true,
        );
      }
      // What the real SDK and transport cost alone, in this process, against the same server at
      // the same concurrency: the part of the figure above that no change to synthbuild removes.
      const { default: OpenAI } = await import("openai");
      const { createHttpFetch } = await import("../src/providers/http-fetch.js");
      const sdk = new OpenAI({ apiKey: "bench", baseURL: fast.baseURL, maxRetries: 0, fetch: createHttpFetch({ env: {} }), logLevel: "warn" });
      const body = {
        model: "bench-model",
        messages: [{ role: "user" as const, content: "6f1c1e0a-2b4d-4e8f-9a7b-3c5d7e9f1a2b a0 b0 c0 d0 e0" }],
        max_tokens: 100,
      };
      const SDK_REQUESTS = 10_000;
      const sdkRuns: number[] = [];
      for (let i = 0; i < 2; i++) {
        let next = 0;
        const before = process.cpuUsage();
        await Promise.all(
          Array.from({ length: CONCURRENCY }, async () => {
            while (next++ < SDK_REQUESTS) await sdk.chat.completions.create(body).withResponse();
          }),
        );
        const used = process.cpuUsage(before);
        sdkRuns.push((used.user + used.system) / 1000 / SDK_REQUESTS);
      }
      report(
        "the openai SDK and transport alone (in the bench's process, 64 in flight, same server)",
        // The machine's speed moves both figures (this one by a third within a day here): their
        // quotient is what a change to synthbuild moves.
        `${Math.min(...sdkRuns).toFixed(3)} ms CPU a request (runs: ${sdkRuns.map((x) => x.toFixed(3)).join(", ")}); the build above took ${(perRequestMs / Math.min(...sdkRuns)).toFixed(2)} times this`,
        "",
        undefined,
        "a figure: the floor under the line above",
        true,
      );
    } finally {
      fast.stop();
    }
  }

  if (want("space-sample")) {
    // 12 lists of 10: 10^12 combinations, far past what a walk of the product could finish.
    const d = await tmp();
    const names = "abcdefghijkl".split("");
    const lists = names.map((l) => `  ${l}: [${Array.from({ length: 10 }, (_, i) => `${l}${i}`).join(", ")}]`).join("\n");
    await writeFile(
      join(d, "dataset.yaml"),
      `version: 1\nname: space\nmodel: { name: gpt-4o-mini }\ndimensions:\n${lists}\ncombine: { mode: sample, n: 1000000 }\nsteps:\n  - id: s\n    generate: { prompt: "{{ nonce }} ${names.map((l) => `{{ ${l} }}`).join(" ")}" }\noutput: { path: dist/x.jsonl, prompt: "{{ a }}", completion: "{{ s }}" }\n`,
    );
    const { r, u } = await probed(["plan", "--json"], d, "plan of a sample of 10^6 from 10^12");
    const samples = (JSON.parse(r.stdout) as { samples: number }).samples;
    report(
      "plan: sample of 1,000,000 from 10^12 combinations",
      `${r.wallS.toFixed(2)} s wall, ${u.cpuS.toFixed(2)} s CPU, ${r.peakRssMb.toFixed(0)} MB peak RSS (${u.maxRssMb.toFixed(0)} MB by the child), ${samples} samples`,
      "",
      undefined,
      "≤ 15 s and ≤ 1 GB",
      r.wallS <= 15 && r.peakRssMb <= 1024 && samples === 1_000_000,
    );
  }

  if (want("space-pairwise")) {
    const d = await tmp();
    const lists = Array.from({ length: 30 }, (_, i) => `  d${i}: [${Array.from({ length: 30 }, (_, j) => `v${j}`).join(", ")}]`).join("\n");
    await writeFile(
      join(d, "dataset.yaml"),
      `version: 1\nname: pairs\nmodel: { name: gpt-4o-mini }\ndimensions:\n${lists}\ncombine: { mode: pairwise }\nsteps:\n  - id: s\n    generate: { prompt: "{{ nonce }} {{ d0 }} {{ d29 }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ d0 }}", completion: "{{ s }}" }\n`,
    );
    const { r, u } = await probed(["plan", "--json"], d, "plan of pairwise over 30 × 30");
    const p = JSON.parse(r.stdout) as { samples: number; pairwise: { covered: number; total: number }[] };
    const covered = p.pairwise.reduce((n, x) => n + x.covered, 0);
    const total = p.pairwise.reduce((n, x) => n + x.total, 0);
    report(
      "plan: pairwise over 30 dimensions × 30 values (30^30 combinations)",
      `${r.wallS.toFixed(2)} s wall, ${u.cpuS.toFixed(2)} s CPU, ${r.peakRssMb.toFixed(0)} MB peak RSS, ${p.samples} rows, ${covered} of ${total} value pairs covered`,
      "900 rows (30 × 30)",
      900 / p.samples,
      "≤ 15 s, every pair covered",
      r.wallS <= 15 && covered === total && total === 435 * 900,
    );
  }

  if (want("pushpull")) {
    // 2,000 answers through a real S3-protocol server on loopback (s3rver), 16 transfers at once.
    const s3 = await TestS3.start();
    try {
      const s3env = { ...S3_CREDENTIALS, S3_ENDPOINT: s3.endpoint };
      const withRemote = (text: string) => `${text}cache: { remote: "s3://${BUCKET}/bench", endpoint: "\${S3_ENDPOINT}" }\n`;
      const a = await tmp();
      // Built without the remote first, so write-back uploads nothing and push has all 2,000 to do.
      const local = manifest({ baseURL: server.baseURL, name: "bench-sync" });
      await writeFile(join(a, "dataset.yaml"), local);
      must(await cli(["build", "-q", "--offline"], a, s3env), "offline build for push");
      const noop = must(await cli(["build", "-q", "--offline"], a, s3env), "local no-op");
      await writeFile(join(a, "dataset.yaml"), withRemote(local));
      const pushed = must(await cli(["push", "--json"], a, s3env), "push");
      const p = JSON.parse(pushed.stdout) as { transferred: number; bytes: number; seconds: number };
      // The ideal: the same objects through the bare AWS SDK, 16 at once, against the same server.
      const bare = await bareSdk(s3.endpoint, "bench/objects/");
      report(
        `push ${p.transferred} answers`,
        `${pushed.wallS.toFixed(2)} s whole command (${p.seconds.toFixed(2)} s transferring, ${(p.bytes / 1024 / 1024 / p.seconds).toFixed(1)} MiB/s, ${(p.transferred / p.seconds).toFixed(0)} objects/s)`,
        `${bare.putS.toFixed(2)} s bare SDK PUTs`,
        bare.putS / p.seconds,
        "all 2,000 uploaded",
        p.transferred === N,
      );
      const b = await tmp();
      await writeFile(join(b, "dataset.yaml"), await readFile(join(a, "dataset.yaml"), "utf8"));
      await writeFile(join(b, "dataset.lock"), await readFile(join(a, "dataset.lock"), "utf8"));
      const pulled = must(await cli(["pull", "--json"], b, s3env), "pull");
      const q = JSON.parse(pulled.stdout) as { transferred: number; bytes: number; seconds: number };
      const frozen = must(await cli(["build", "-q", "--frozen", "--offline", "--json"], b, s3env), "frozen build after pull");
      report(
        `pull ${q.transferred} answers`,
        `${q.seconds.toFixed(2)} s transferring and validating`,
        `${bare.getS.toFixed(2)} s bare SDK GETs`,
        bare.getS / q.seconds,
        "at least 0.8 of the bare SDK",
        q.transferred === N && bare.getS / q.seconds >= 0.8,
      );
      report(
        `pull ${q.transferred} answers + build --frozen`,
        `${pulled.wallS.toFixed(2)} s pull (${q.seconds.toFixed(2)} s transferring, ${(q.bytes / 1024 / 1024 / q.seconds).toFixed(1)} MiB/s, ${(q.transferred / q.seconds).toFixed(0)} objects/s) + ${frozen.wallS.toFixed(2)} s frozen build`,
        `${noop.wallS.toFixed(2)} s local no-op`,
        noop.wallS / (pulled.wallS + frozen.wallS),
        "all 2,000 pulled and validated, 0 requests",
        q.transferred === N && (JSON.parse(frozen.stdout) as { requests: number }).requests === 0,
      );
      // The release gate on a fresh clone: no pull, `build --frozen` fetches what the lock names.
      const c = await tmp();
      await writeFile(join(c, "dataset.yaml"), await readFile(join(a, "dataset.yaml"), "utf8"));
      await writeFile(join(c, "dataset.lock"), await readFile(join(a, "dataset.lock"), "utf8"));
      const gate = must(await cli(["build", "-q", "--frozen", "--offline", "--json"], c, s3env), "frozen build fetching from the remote");
      const g = JSON.parse(gate.stdout) as { requests: number; remote?: { fetched: number } };
      const same =
        (await readFile(join(c, "dist/bench.jsonl"), "utf8").catch(() => "")) === (await readFile(join(a, "dist/bench.jsonl"), "utf8").catch(() => ""));
      report(
        `build --frozen of ${N} samples, fetched from the remote`,
        `${gate.wallS.toFixed(2)} s whole command (${g.remote?.fetched ?? "?"} fetched)`,
        `${noop.wallS.toFixed(2)} s local no-op`,
        noop.wallS / gate.wallS,
        "every answer fetched and checked, 0 requests, dist/ identical",
        g.requests === 0 && g.remote?.fetched === N && same,
      );
    } finally {
      await s3.remove();
    }
  }

  if (want("batch")) {
    // The Batch API (model.mode: batch): each stage of a batch (validating, in_progress,
    // finalizing) lasts BATCH_STEP_MS on the test server, so a batch takes 3 × that to answer.
    const BATCH_STEP_MS = 200;
    const bs = await startServer(["--latency", "0", "--batch-step-ms", String(BATCH_STEP_MS)]);
    const stats = async () =>
      (await (await fetch(`${bs.url}/__control/stats`)).json()) as {
        requests: number;
        batches: { batchesCreated: number; filesUploaded: number; linesAnswered: number };
      };
    const batchManifest = (mode: string) =>
      manifest({ baseURL: bs.baseURL }).replace("  retries: 6\n", `  retries: 6\n${mode}  price: { input_per_mtok: 1, output_per_mtok: 2 }\n`);
    const benv = { ...env, SYNTHBUILD_BATCH_POLL_MS: "50" };
    try {
      const d = await tmp();
      await writeFile(join(d, "dataset.yaml"), batchManifest("  mode: batch\n"));
      const direct = await tmp();
      await writeFile(join(direct, "dataset.yaml"), batchManifest(""));
      const [pb, pd] = await Promise.all([d, direct].map(async (x) => JSON.parse(must(await cli(["plan", "--json"], x, benv), "plan").stdout)));
      const ratio = pb.estimate.cost_usd / pd.estimate.cost_usd;
      report(
        "plan: batch price / list price",
        `${ratio.toFixed(3)} ($${pb.estimate.cost_usd} vs $${pd.estimate.cost_usd})`,
        "",
        undefined,
        "0.50 (±0.0001: costs are rounded to $0.000001)",
        Math.abs(ratio - 0.5) < 1e-4,
      );

      // What the client does for a batch (write the file, upload, download, check and store 2,000
      // answers, build) is compared with a direct build of the same answers at 0 ms latency,
      // whose time is all client work too.
      const floorDir = await tmp();
      await writeFile(join(floorDir, "dataset.yaml"), batchManifest(""));
      const floorRun = must(await cli(["build", "-q"], floorDir, benv), "direct build at 0 ms latency");
      await fetch(`${bs.url}/__control/reset`, { method: "POST" });
      const cold = must(await cli(["build", "-q", "--json"], d, benv), "batch build");
      const st = await stats();
      const processing = (3 * BATCH_STEP_MS) / 1000;
      const overhead = cold.wallS - processing;
      report(
        `batch build (${N} requests)`,
        `${cold.wallS.toFixed(2)} s (${overhead.toFixed(2)} s beyond the batch's own time); ${st.requests} direct requests, ${st.batches.batchesCreated} batch, ${st.batches.linesAnswered} lines answered`,
        `${processing.toFixed(2)} s the batch's own time`,
        processing / cold.wallS,
        `0 direct requests, 1 batch; the time beyond the batch's ≤ a direct build's at 0 ms latency (${floorRun.wallS.toFixed(2)} s)`,
        st.requests === 0 && st.batches.batchesCreated === 1 && overhead <= floorRun.wallS,
      );
      const frozen = must(await cli(["build", "-q", "--frozen", "--json"], d, benv), "frozen after batch");
      const fst = await stats();
      report(
        "build --frozen after a batch build",
        `${frozen.wallS.toFixed(2)} s; ${fst.requests} requests, ${fst.batches.batchesCreated - st.batches.batchesCreated} batches`,
        "",
        undefined,
        "0 requests, 0 batches",
        fst.requests === 0 && fst.batches.batchesCreated === st.batches.batchesCreated,
      );

      // kill -9 while the batch is pending, then build again: the batch is found, not submitted twice.
      await fetch(`${bs.url}/__control/reset`, { method: "POST" });
      await fetch(`${bs.url}/__control/batch-step`, { method: "POST", body: JSON.stringify({ ms: 2000 }) });
      const k = await tmp();
      await writeFile(join(k, "dataset.yaml"), batchManifest("  mode: batch\n"));
      const child = spawn(process.execPath, [BIN, "build", "-q"], { cwd: k, env: { ...process.env, CI: "true", ...benv }, stdio: "ignore" });
      const exited = new Promise((r) => child.on("close", r));
      const t0 = Date.now();
      while ((await stats()).batches.batchesCreated < 1 && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 300));
      child.kill("SIGKILL");
      await exited;
      await fetch(`${bs.url}/__control/batch-step`, { method: "POST", body: JSON.stringify({ ms: BATCH_STEP_MS }) });
      const resumed = must(await cli(["build", "-q", "--json"], k, benv), "rebuild after kill -9");
      const kst = await stats();
      const rows = (JSON.parse(resumed.stdout) as { outputs: { rows: number }[] }).outputs[0]?.rows;
      report(
        "kill -9 while polling, then build",
        `${kst.batches.batchesCreated} batch created in all, ${kst.requests} direct requests, ${rows} rows, rebuild ${resumed.wallS.toFixed(2)} s`,
        "",
        undefined,
        `1 batch, ${N} rows`,
        kst.batches.batchesCreated === 1 && kst.requests === 0 && rows === N,
      );

      // Split at a lowered line limit (the API's is 50,000 lines or 200 MB a file).
      await fetch(`${bs.url}/__control/reset`, { method: "POST" });
      const sp = await tmp();
      await writeFile(join(sp, "dataset.yaml"), batchManifest("  mode: batch\n"));
      must(await cli(["build", "-q"], sp, { ...benv, SYNTHBUILD_BATCH_MAX_LINES: "500" }), "split batch build");
      const sst = await stats();
      report(
        "split at 500 lines a file",
        `${sst.batches.batchesCreated} batches, ${sst.batches.linesAnswered} lines`,
        "",
        undefined,
        `${N / 500} batches`,
        sst.batches.batchesCreated === N / 500,
      );
    } finally {
      bs.stop();
    }
  }
} finally {
  server.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
}

process.stdout.write("\n| run | figure | ideal | ratio | target | met |\n|---|---|---|---|---|---|\n");
for (const r of results) process.stdout.write(`| ${r.name} | ${r.figure} | ${r.ideal} | ${r.ratio} | ${r.target} | ${r.ok ? "yes" : "no"} |\n`);
