import { UsageError } from "../errors.js";
import { ProviderPool } from "../execute/providers.js";
import { readLock } from "../lock/lockfile.js";
import type { GenerateStep } from "../manifest/types.js";
import { type CommonOptions, openProject } from "./context.js";

export interface StepDrift {
  step: string;
  model: string;
  endpoint: string;
  /** What the endpoint reports answering with now: one tiny request tells. */
  now: { model: string | null; fingerprint: string | null };
  /** The snapshots and fingerprints the lock's answers came from, and how many each. */
  answeredBy: { model: string | null; fingerprint: string | null; samples: number }[];
  /** Samples whose answer came from another snapshot (or fingerprint) than the one reported now. */
  drifted: string[];
}

/**
 * Which answers were given by a model snapshot other than the one the endpoint serves now: the
 * lock records the `model` and `system_fingerprint` each answer reported; one request per step's
 * model (a one-token answer, cached nowhere) asks what it reports today. A step answered offline
 * has no drift to show.
 */
export async function drift(opts: CommonOptions = {}): Promise<StepDrift[]> {
  const { manifest: m, paths } = await openProject(opts);
  const existing = await readLock(paths.lock);
  if (!existing) throw new UsageError("no dataset.lock: there are no answers to compare", "run `synthbuild build` first");
  if (existing.lock.header.offline) return [];
  const controller = new AbortController();
  const onAbort = () => controller.abort();
  opts.signal?.addEventListener("abort", onAbort, { once: true });
  const pool = new ProviderPool(opts.env ?? process.env, { offline: false, signal: controller.signal });
  try {
    const out: StepDrift[] = [];
    const probed = new Map<string, Promise<StepDrift["now"]>>();
    for (const step of m.steps.filter((s): s is GenerateStep => s.kind === "generate" && s.model.provider !== "echo")) {
      const by = new Map<string, { model: string | null; fingerprint: string | null; ids: string[] }>();
      for (const s of existing.lock.samples) {
        const st = s.steps[step.id];
        if (!st?.key) continue;
        const k = `${st.model ?? ""}\u0000${st.fp ?? ""}`;
        (by.get(k) ?? by.set(k, { model: st.model ?? null, fingerprint: st.fp ?? null, ids: [] }).get(k)!).ids.push(s.id);
      }
      if (!by.size) continue;
      const id = `${step.model.endpoint}\u0000${step.model.name}`;
      if (!probed.has(id)) probed.set(id, probe(pool, step, controller.signal));
      const now = await probed.get(id)!;
      const drifted: string[] = [];
      for (const g of by.values()) if (g.model !== now.model || (now.fingerprint !== null && g.fingerprint !== now.fingerprint)) drifted.push(...g.ids);
      out.push({
        step: step.id,
        model: step.model.name,
        endpoint: step.model.endpoint,
        now,
        answeredBy: [...by.values()].map((g) => ({ model: g.model, fingerprint: g.fingerprint, samples: g.ids.length })).sort((a, b) => b.samples - a.samples),
        drifted: drifted.sort(),
      });
    }
    return out;
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

async function probe(pool: ProviderPool, step: GenerateStep, signal: AbortSignal): Promise<StepDrift["now"]> {
  // With model.endpoints: the first replica answers for the group (replicas serve one model).
  const provider = await pool.providerFor(step, pool.replicasFor(step).replicas[0]!.cfg);
  const req = {
    provider: step.model.provider,
    endpoint: step.model.endpoint,
    model: step.model.name,
    messages: [{ role: "user" as const, content: "Reply with one word." }],
    params: { max_tokens: 1 },
  };
  try {
    const a = await provider.complete(req, signal);
    return { model: a.model ?? null, fingerprint: a.fingerprint ?? null };
  } catch (err) {
    throw new UsageError(`could not ask ${step.model.endpoint} which snapshot of ${step.model.name} it serves: ${pool.redact((err as Error).message)}`);
  }
}
