import type { RawModel } from "./schema.js";
import type { ModelConfig, ProviderKind } from "./types.js";

const DEFAULTS = { concurrency: 16, timeoutS: 120, retries: 6 } as const;
/** `mode: auto` without `batch_above`: below this many requests a step's answers are not worth a day's wait. */
export const DEFAULT_BATCH_ABOVE = 1000;
const OLLAMA_URL = "http://localhost:11434/v1";
const OPENAI_URL = "https://api.openai.com/v1";

/** A step's override on top of the manifest's model: maps merge key by key, scalars replace. */
export function mergeModel(base: RawModel | undefined, override: RawModel | undefined): RawModel {
  const b = base ?? {};
  const o = override ?? {};
  return {
    ...b,
    ...o,
    params: { ...b.params, ...o.params },
    headers: { ...b.headers, ...o.headers },
    extra_body: { ...b.extra_body, ...o.extra_body },
  };
}

/** Apply defaults. Returns undefined for the name when a real provider has none (the caller reports it). */
export function resolveModel(raw: RawModel): ModelConfig & { nameMissing: boolean } {
  const provider: ProviderKind = raw.provider ?? "openai";
  const baseUrl = raw.base_url ? raw.base_url : provider === "ollama" ? OLLAMA_URL : undefined;
  return {
    provider,
    name: raw.name ?? (provider === "echo" ? "echo" : ""),
    nameMissing: !raw.name && provider !== "echo",
    baseUrl,
    endpoint: provider === "echo" ? "echo" : (raw.endpoint_id ?? endpointOf(baseUrl ?? OPENAI_URL)),
    apiKeyEnv: raw.api_key_env ?? "OPENAI_API_KEY",
    ...(raw.api === "completions" && provider !== "echo" ? { api: "completions" as const } : {}),
    headers: raw.headers ?? {},
    extraBody: raw.extra_body ?? {},
    params: raw.params ?? {},
    concurrency: raw.concurrency ?? DEFAULTS.concurrency,
    rpm: raw.rpm,
    tpm: raw.tpm,
    timeoutS: raw.timeout_s ?? DEFAULTS.timeoutS,
    totalTimeoutS: raw.total_timeout_s ?? 3 * (raw.timeout_s ?? DEFAULTS.timeoutS),
    retries: raw.retries ?? DEFAULTS.retries,
    price: raw.price ? { inputPerMtok: raw.price.input_per_mtok, outputPerMtok: raw.price.output_per_mtok } : undefined,
    ...(raw.mode && raw.mode !== "direct" && provider !== "echo" ? { mode: raw.mode } : {}),
    ...(raw.mode === "auto" && provider !== "echo" ? { batchAbove: raw.batch_above ?? DEFAULT_BATCH_ABOVE } : {}),
  };
}

/**
 * The identity of an endpoint URL: scheme, host and port (as URL normalises them: lower case, no
 * default port), path without trailing slashes, and the query (Azure's api-version selects the
 * API). Credentials in the URL are dropped: they say who pays, not who answers, and must never
 * reach a cache entry.
 */
export function endpointOf(url: string): string {
  let u: URL;
  try {
    u = new URL(url.trim());
  } catch {
    return url.trim();
  }
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, "")}${u.search}`;
}
