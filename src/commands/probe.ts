import { setMaxListeners } from "node:events";
import { UsageError } from "../errors.js";
import { ProviderPool } from "../execute/providers.js";
import type { GenerateStep } from "../manifest/types.js";
import type { ChatRequest } from "../plan/request.js";
import { EndpointRefused, NoResponse, RequestError } from "../providers/types.js";
import { type CommonOptions, openProject } from "./context.js";

export interface ProbeOptions extends CommonOptions {
  /** The generate step whose endpoint and model are probed (default: the first). */
  step?: string;
  /** Seconds at each concurrency (default 5). */
  seconds?: number;
  /** The highest concurrency tried (default 256). */
  max?: number;
}

export interface ProbeLevel {
  concurrency: number;
  /** Answers a second over the level's run. */
  throughput: number;
  answered: number;
  /** Refused with 429 (a limit on requests in flight or per second). */
  refused: number;
  failed: number;
  p50_ms: number | null;
  p95_ms: number | null;
}

export interface ProbeResult {
  step: string;
  model: string;
  endpoint: string;
  levels: ProbeLevel[];
  /**
   * What to set: the lowest concurrency reaching 90% of the best throughput seen, or, where the
   * endpoint refused at that level, what it served at once there.
   */
  knee: number | null;
  best_throughput: number;
}

/** A short request, the same every time: what is measured is the endpoint, not the prompt. */
const PROBE_PROMPT = "Reply with the single word: ready";

/**
 * `synthbuild probe`: how an endpoint's throughput grows with concurrency (for self-hosted vLLM,
 * SGLang or llama.cpp, where the right `concurrency` is unknown). Doubles the requests in flight
 * for a few seconds each until throughput stops growing or the endpoint refuses, and gives the
 * knee. Nothing is cached or written: these are requests to measure, not answers to keep.
 */
export async function probe(opts: ProbeOptions = {}): Promise<ProbeResult> {
  const { manifest: m } = await openProject(opts);
  const generates = m.steps.filter((s): s is GenerateStep => s.kind === "generate");
  const step = opts.step ? generates.find((s) => s.id === opts.step) : generates[0];
  if (!step)
    throw new UsageError(
      opts.step ? `no generate step '${opts.step}'` : "the manifest has no generate step to probe",
      generates.length ? `generate steps: ${generates.map((s) => s.id).join(", ")}` : "probe measures the endpoint of a generate step",
    );
  if (step.model.provider === "echo")
    throw new UsageError(`step '${step.id}' uses the offline echo provider: there is no endpoint to probe`, "set model.provider and base_url");
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const onAbort = () => controller.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  try {
    const pool = new ProviderPool(opts.env ?? process.env, { offline: false, signal: controller.signal });
    // With model.endpoints: the first replica, with its own key and headers (a knee is one server's).
    const provider = await pool.providerFor(step, pool.replicasFor(step).replicas[0]!.cfg);
    const req: ChatRequest = {
      provider: step.model.provider,
      endpoint: step.model.endpoint,
      model: step.model.name,
      messages: [{ role: "user", content: PROBE_PROMPT }],
      // The step's own parameters and extra body (a gateway's routing, vLLM's options), with a
      // short answer: in whichever of max_tokens / max_completion_tokens the step uses.
      params: { ...step.model.params, ...("max_completion_tokens" in step.model.params ? { max_completion_tokens: 16 } : { max_tokens: 16 }) },
      ...(Object.keys(step.model.extraBody).length ? { extra_body: { ...step.model.extraBody } } : {}),
      ...(step.model.api ? { api: step.model.api } : {}),
    };
    const seconds = opts.seconds ?? 5;
    const max = opts.max ?? 256;
    const levels: (ProbeLevel & { firstError?: string })[] = [];
    for (let c = 1; c <= max && !controller.signal.aborted; c *= 2) {
      const level = await runLevel(
        c,
        seconds,
        () => provider.complete(req, controller.signal, { timeoutMs: step.model.timeoutS * 1000 }),
        controller.signal,
      ).catch((err: Error) => {
        throw new UsageError(
          pool.redact(`no answer from ${step.model.baseUrl ?? "the endpoint"} at concurrency ${c}: ${err.message}`),
          "check base_url, the key and the model name with a build of one sample (--limit 1)",
        );
      });
      levels.push(level);
      opts.events?.decided?.(`concurrency ${c}: ${level.throughput.toFixed(1)} answers/s, ${level.refused} refused, ${level.failed} failed`);
      // Every request failing is the endpoint's problem, not a measurement: say it once.
      if (level.answered === 0)
        throw new UsageError(
          pool.redact(`no answer from ${step.model.baseUrl ?? "the endpoint"} at concurrency ${c}: ${level.firstError ?? "every request failed"}`),
          "check base_url, the key and the model name with a build of one sample (--limit 1)",
        );
      const best = Math.max(...levels.map((l) => l.throughput));
      // Past the knee: refusals, or two doublings in a row that bought under 10% more.
      const last3 = levels.slice(-3).map((l) => l.throughput);
      if (level.refused > 0.05 * (level.answered + level.refused)) break;
      if (last3.length === 3 && last3[2]! < 1.1 * last3[0]! && best > 0) break;
    }
    const best = Math.max(...levels.map((l) => l.throughput));
    const at = levels.find((l) => l.throughput >= 0.9 * best);
    // A knee the endpoint already refused at is past its limit: what it served at once there is,
    // by Little's law, answers a second times the time each took.
    const served = at && at.refused > 0 && at.p50_ms !== null ? Math.round((at.throughput * at.p50_ms) / 1000) : undefined;
    const knee = at ? (served !== undefined ? Math.max(1, Math.min(at.concurrency, served)) : at.concurrency) : null;
    return {
      step: step.id,
      model: step.model.name,
      endpoint: step.model.endpoint,
      levels: levels.map(({ firstError: _, ...l }) => l),
      knee,
      best_throughput: round(best),
    };
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
    controller.abort();
  }
}

async function runLevel(c: number, seconds: number, send: () => Promise<unknown>, signal: AbortSignal): Promise<ProbeLevel & { firstError?: string }> {
  const latencies: number[] = [];
  let refused = 0;
  let failed = 0;
  let firstError: string | undefined;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: c }, async () => {
      while (performance.now() < until && !signal.aborted) {
        const t = performance.now();
        try {
          await send();
          latencies.push(performance.now() - t);
        } catch (err) {
          if (signal.aborted) return;
          // A wrong key, an unknown model, a dead port: nothing to measure, and no reason to go on.
          if (err instanceof EndpointRefused || err instanceof NoResponse) throw err;
          if (err instanceof RequestError && err.status === 429) refused++;
          else {
            failed++;
            firstError ??= (err as Error).message;
          }
          // A refusal or an error answers at once: without a pause, a worker would spin on it.
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? Math.round(latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!) : null);
  return {
    concurrency: c,
    throughput: round(latencies.length / elapsed),
    answered: latencies.length,
    refused,
    failed,
    p50_ms: at(0.5),
    p95_ms: at(0.95),
    firstError,
  };
}

function round(n: number): number {
  return Math.round(n * 10) / 10;
}
