import { UsageError } from "../errors.js";
import type { GenerateStep, ModelConfig } from "../manifest/types.js";
import { EchoProvider } from "../providers/echo.js";
import type { Provider } from "../providers/types.js";
import { canonicalJson } from "../util/canonical-json.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";

/**
 * One provider client per endpoint and one scheduler per (endpoint, model, limits), created on
 * first use: a build whose answers are all cached needs no API key at all.
 */
export class ProviderPool {
  private readonly providers = new Map<string, Promise<Provider>>();
  private readonly schedulers = new Map<string, Scheduler>();

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly opts: { offline: boolean; concurrency?: number; signal: AbortSignal; onRetry?: SchedulerOptions["onRetry"] },
  ) {}

  providerFor(step: GenerateStep): Promise<Provider> {
    const cfg = step.model;
    if (this.opts.offline || cfg.provider === "echo") return this.cached("echo", async () => new EchoProvider());
    const id = canonicalJson({ p: cfg.provider, u: cfg.baseUrl, k: cfg.apiKeyEnv, h: cfg.headers, t: cfg.timeoutS });
    return this.cached(id, async () => {
      const key = this.apiKey(step, cfg);
      // Loaded on first use: the SDK costs ~70 ms of start-up that a cached build should not pay.
      const { OpenAIProvider } = await import("../providers/openai.js");
      return new OpenAIProvider(cfg, key);
    });
  }

  schedulerFor(step: GenerateStep): Scheduler {
    const cfg = step.model;
    const offline = this.opts.offline || cfg.provider === "echo";
    const concurrency = this.opts.concurrency ?? cfg.concurrency;
    const id = offline ? "echo" : canonicalJson({ p: cfg.provider, u: cfg.baseUrl, m: cfg.name, c: concurrency, r: cfg.rpm, t: cfg.tpm, n: cfg.retries });
    let s = this.schedulers.get(id);
    if (!s) {
      s = new Scheduler({
        concurrency: offline ? 64 : concurrency,
        rpm: offline ? undefined : cfg.rpm,
        tpm: offline ? undefined : cfg.tpm,
        retries: cfg.retries,
        signal: this.opts.signal,
        onRetry: this.opts.onRetry,
      });
      this.schedulers.set(id, s);
    }
    return s;
  }

  private cached(id: string, make: () => Promise<Provider>): Promise<Provider> {
    let p = this.providers.get(id);
    if (!p) this.providers.set(id, (p = make()));
    return p;
  }

  private apiKey(step: GenerateStep, cfg: ModelConfig): string {
    const key = this.env[cfg.apiKeyEnv];
    if (key) return key;
    // Local OpenAI-compatible servers (vLLM, llama.cpp, Ollama) usually take any key.
    if (cfg.baseUrl) return "no-key";
    throw new UsageError(
      `step '${step.id}' needs ${cfg.apiKeyEnv}: ${step.model.name} at OpenAI has answers missing from the cache`,
      `export ${cfg.apiKeyEnv}=…, set model.base_url for a local endpoint, or run with --offline to use the echo provider`,
    );
  }
}
