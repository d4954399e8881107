import { setMaxListeners } from "node:events";
import { UsageError } from "../errors.js";
import type { GenerateStep, ModelConfig } from "../manifest/types.js";
import { EchoProvider } from "../providers/echo.js";
import type { OpenAIBatches } from "../providers/openai-batch.js";
import type { Provider } from "../providers/types.js";
import { canonicalJson } from "../util/canonical-json.js";
import { displayUrl, type Redact, redactor, secretsIn } from "../util/redact.js";
import { Breaker } from "./breaker.js";
import { OPENAI_URL } from "./endpoint-errors.js";
import { type Replica, ReplicaHealth, ReplicaSet } from "./replicas.js";
import { Scheduler, type SchedulerOptions } from "./scheduler.js";

/**
 * One provider client per endpoint and one scheduler per (endpoint, model, limits), created on
 * first use: a build whose answers are all cached needs no API key at all. Also what concerns an
 * endpoint as a whole: its breaker, and halting every scheduler when the build must stop.
 */
export class ProviderPool {
  private readonly providers = new Map<string, Promise<Provider>>();
  private readonly schedulers = new Map<string, Scheduler>();
  private readonly breakers = new Map<string, Breaker>();
  private readonly batchClients = new Map<string, Promise<OpenAIBatches>>();
  private readonly health = new Map<string, ReplicaHealth>();
  private readonly sets = new Map<GenerateStep, ReplicaSet>();
  /**
   * Aborted when an endpoint error stops the build: the schedulers stop starting requests (their
   * queues and waits are given this), while requests already sent keep the build's own signal
   * and may finish, so their answers are kept.
   */
  private readonly halt = new AbortController();
  private readonly schedulerSignal: AbortSignal;
  private readonly keyEnvs = new Set(["OPENAI_API_KEY"]);
  private masking: Redact;

  constructor(
    private readonly env: NodeJS.ProcessEnv,
    private readonly opts: { offline: boolean; concurrency?: number; signal: AbortSignal; onRetry?: SchedulerOptions["onRetry"] },
  ) {
    this.schedulerSignal = AbortSignal.any([opts.signal, this.halt.signal]);
    // Every queued and waiting request listens to it, as to the build's signal.
    setMaxListeners(0, this.schedulerSignal);
    this.masking = redactor(secretsIn(env, this.keyEnvs));
  }

  /** Masks every key the build's environment holds (and each api_key_env used), wherever a message is stored or printed. */
  readonly redact: Redact = (text) => this.masking(text);

  /** Start no more requests on any endpoint (those sent already may finish). */
  stopStarting(): void {
    this.halt.abort();
  }

  /** The breaker of the endpoint a step's requests go to (`cfg`: one of its replicas). */
  breakerFor(step: GenerateStep, cfg: ModelConfig = step.model): Breaker {
    const id = cfg.baseUrl ?? "";
    let b = this.breakers.get(id);
    if (!b) this.breakers.set(id, (b = new Breaker()));
    return b;
  }

  /**
   * The replicas a step's requests are spread over: `model.endpoints:`, or its one endpoint. Each
   * is the step's model with the replica's address, limits, key and headers, so it gets its own
   * client, scheduler and breaker exactly as a model naming that base_url would.
   */
  replicasFor(step: GenerateStep): ReplicaSet {
    let set = this.sets.get(step);
    if (set) return set;
    const replicas = this.replicaConfigs(step).map((cfg): Replica => {
      const url = cfg.baseUrl || OPENAI_URL;
      // Per model and key too: a replica refusing one model, or one key, may serve another step's.
      const id = canonicalJson({ u: url, m: cfg.name, k: cfg.apiKeyEnv });
      let health = this.health.get(id);
      if (!health) this.health.set(id, (health = new ReplicaHealth(url)));
      return { cfg, provider: this.providerFor(step, cfg), scheduler: this.schedulerFor(step, cfg), breaker: this.breakerFor(step, cfg), health };
    });
    this.sets.set(step, (set = new ReplicaSet(replicas, this.schedulerSignal)));
    return set;
  }

  /** Each replica's config: the step's model with the replica's address, limits, key and headers. */
  private replicaConfigs(step: GenerateStep): ModelConfig[] {
    const m = step.model;
    const offline = this.opts.offline || m.provider === "echo";
    return offline || !m.replicas
      ? [m]
      : m.replicas.map((r) => ({ ...m, baseUrl: r.baseUrl, concurrency: r.concurrency, rpm: r.rpm, tpm: r.tpm, apiKeyEnv: r.apiKeyEnv, headers: r.headers }));
  }

  /**
   * The endpoint a step's Batch API calls go to: its first replica, with that replica's own key
   * and headers (never the model-level key, meant for another host).
   */
  batchConfig(step: GenerateStep): ModelConfig {
    return this.replicaConfigs(step)[0]!;
  }

  /** Answers per replica, for the summary: only when some step spreads its requests over several. */
  replicaAnswers(): { url: string; answers: number }[] | undefined {
    if (![...this.sets.values()].some((s) => s.many)) return undefined;
    const by = new Map<string, number>();
    for (const h of this.health.values()) by.set(displayUrl(h.url), (by.get(displayUrl(h.url)) ?? 0) + h.answers);
    return [...by].map(([url, answers]) => ({ url, answers }));
  }

  providerFor(step: GenerateStep, cfg: ModelConfig = step.model): Promise<Provider> {
    if (this.opts.offline || cfg.provider === "echo") return this.cached("echo", async () => new EchoProvider());
    const id = canonicalJson({ p: cfg.provider, u: cfg.baseUrl, k: cfg.apiKeyEnv, h: cfg.headers, t: cfg.timeoutS });
    return this.cached(id, async () => {
      if (!this.keyEnvs.has(cfg.apiKeyEnv)) {
        this.keyEnvs.add(cfg.apiKeyEnv);
        this.masking = redactor(secretsIn(this.env, this.keyEnvs));
      }
      const key = this.apiKey(step, cfg);
      // Loaded on first use: the SDK costs ~70 ms of start-up that a cached build should not pay.
      const { OpenAIProvider } = await import("../providers/openai.js");
      return new OpenAIProvider(cfg, key, this.env);
    });
  }

  /** The Batch API client of a step's endpoint (one per endpoint, as for direct requests; its key looked up the same way). */
  batchesFor(step: GenerateStep): Promise<OpenAIBatches> {
    const cfg = this.batchConfig(step);
    const id = canonicalJson({ p: cfg.provider, u: cfg.baseUrl, k: cfg.apiKeyEnv, h: cfg.headers, t: cfg.timeoutS });
    let p = this.batchClients.get(id);
    if (!p) {
      if (!this.keyEnvs.has(cfg.apiKeyEnv)) {
        this.keyEnvs.add(cfg.apiKeyEnv);
        this.masking = redactor(secretsIn(this.env, this.keyEnvs));
      }
      const key = this.apiKey(step, cfg);
      p = import("../providers/openai-batch.js").then((m) => new m.OpenAIBatches(cfg, key, this.env));
      this.batchClients.set(id, p);
    }
    return p;
  }

  schedulerFor(step: GenerateStep, cfg: ModelConfig = step.model): Scheduler {
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
        signal: this.schedulerSignal,
        onRetry: this.opts.onRetry && ((r) => this.opts.onRetry!({ ...r, error: Object.assign(r.error, { message: this.redact(r.error.message) }) })),
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

  /** Whether the build's environment holds the key a replica's requests carry (unset: they carry a placeholder). */
  hasKey(cfg: ModelConfig): boolean {
    return Boolean(this.env[cfg.apiKeyEnv]);
  }

  private apiKey(step: GenerateStep, cfg: ModelConfig): string {
    const key = this.env[cfg.apiKeyEnv];
    if (key) return key;
    // A variable the manifest names is meant to hold the key: sending none instead would fail
    // every request with a 401, one by one.
    if (cfg.apiKeyEnv !== "OPENAI_API_KEY")
      throw new UsageError(
        `step '${step.id}' reads its API key from ${cfg.apiKeyEnv} (model.api_key_env), which is not set`,
        `export ${cfg.apiKeyEnv}=…, or change model.api_key_env to the variable that holds the key`,
      );
    // Local OpenAI-compatible servers (vLLM, llama.cpp, Ollama) usually take any key.
    if (cfg.baseUrl) return "no-key";
    throw new UsageError(
      `step '${step.id}' needs ${cfg.apiKeyEnv}: ${step.model.name} at OpenAI has answers missing from the cache`,
      `export ${cfg.apiKeyEnv}=…, set model.base_url for a local endpoint, or run with --offline to use the echo provider`,
    );
  }
}
