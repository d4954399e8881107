import type { Diagnostic } from "../errors.js";
import type { RawModel, RawReplica } from "./schema.js";
import type { KeyPath, YamlSource } from "./source.js";
import type { ModelConfig, ProviderKind, ReplicaConfig } from "./types.js";

const DEFAULTS = { concurrency: 16, timeoutS: 120, retries: 6 } as const;
/** `mode: auto` without `batch_above`: below this many requests a step's answers are not worth a day's wait. */
export const DEFAULT_BATCH_ABOVE = 1000;
const OLLAMA_URL = "http://localhost:11434/v1";
const OPENAI_URL = "https://api.openai.com/v1";

/** A step's override on top of the manifest's model: maps merge key by key, scalars replace. */
export function mergeModel(base: RawModel | undefined, override: RawModel | undefined): RawModel {
  const { base_url: baseUrl, endpoints, ...rest } = base ?? {};
  const o = override ?? {};
  // A step naming its own address replaces the model's, whichever of the two ways each says it.
  const b: RawModel = {
    ...rest,
    ...(o.base_url === undefined && o.endpoints === undefined ? { base_url: baseUrl, endpoints } : {}),
  };
  if (b.base_url === undefined) delete b.base_url;
  if (b.endpoints === undefined) delete b.endpoints;
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
  const replicas = raw.endpoints && provider !== "echo" ? raw.endpoints.map((r) => replicaOf(r, raw)) : undefined;
  const baseUrl = replicas ? replicas[0]!.baseUrl : raw.base_url ? raw.base_url : provider === "ollama" ? OLLAMA_URL : undefined;
  return {
    provider,
    name: raw.name ?? (provider === "echo" ? "echo" : ""),
    nameMissing: !raw.name && provider !== "echo",
    baseUrl,
    endpoint: provider === "echo" ? "echo" : (raw.endpoint_id ?? endpointOf(baseUrl ?? OPENAI_URL)),
    apiKeyEnv: raw.api_key_env ?? "OPENAI_API_KEY",
    ...(raw.api === "completions" && provider !== "echo" ? { api: "completions" as const } : {}),
    headers: raw.headers ?? {},
    // Frozen: every request of a step shares these objects (plan/request.ts), so a write to one
    // would change them all; it throws instead.
    extraBody: Object.freeze({ ...raw.extra_body }),
    params: Object.freeze({ ...raw.params }),
    concurrency: raw.concurrency ?? DEFAULTS.concurrency,
    rpm: raw.rpm,
    tpm: raw.tpm,
    timeoutS: raw.timeout_s ?? DEFAULTS.timeoutS,
    totalTimeoutS: raw.total_timeout_s ?? 3 * (raw.timeout_s ?? DEFAULTS.timeoutS),
    retries: raw.retries ?? DEFAULTS.retries,
    price: raw.price ? { inputPerMtok: raw.price.input_per_mtok, outputPerMtok: raw.price.output_per_mtok } : undefined,
    ...(raw.mode && raw.mode !== "direct" && provider !== "echo" ? { mode: raw.mode } : {}),
    ...(raw.mode === "auto" && provider !== "echo" ? { batchAbove: raw.batch_above ?? DEFAULT_BATCH_ABOVE } : {}),
    // Only with `endpoints:`: a model without them resolves to exactly what it always did.
    ...(replicas ? { replicas } : {}),
  };
}

/** A replica of `endpoints:`, the model's concurrency, limits, key and headers where it sets none. */
function replicaOf(r: RawReplica, model: RawModel): ReplicaConfig {
  const o = typeof r === "string" ? { base_url: r } : r;
  return {
    baseUrl: o.base_url,
    concurrency: o.concurrency ?? model.concurrency ?? DEFAULTS.concurrency,
    rpm: o.rpm ?? model.rpm,
    tpm: o.tpm ?? model.tpm,
    apiKeyEnv: o.api_key_env ?? model.api_key_env ?? "OPENAI_API_KEY",
    headers: { ...model.headers, ...o.headers },
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

/**
 * `model.endpoints:` as the loader checks it, for one model mapping (the manifest's or a step's)
 * at `path`. `endpointId` is the one that applies there (a step's own, else the manifest's).
 */
export function checkEndpoints(src: YamlSource, path: KeyPath, own: RawModel | undefined, endpointId: string | undefined, errors: Diagnostic[]): void {
  const list = own?.endpoints;
  if (!list) return;
  const at = [...path, "endpoints"];
  if (own.base_url !== undefined)
    errors.push(src.at(at, "give base_url or endpoints, not both", "endpoints: lists every replica's URL: move base_url's into it", { key: true }));
  const seen = new Map<string, number>();
  list.forEach((r, i) => {
    const url = typeof r === "string" ? r : r.base_url;
    if (!url.trim()) {
      errors.push(src.at([...at, i], "a replica with an empty base_url", "each entry of endpoints: is a URL, or { base_url: URL, ... }"));
      return;
    }
    const id = endpointOf(url);
    const j = seen.get(id);
    if (j !== undefined) errors.push(src.at([...at, i], `replica ${id} is listed twice (also endpoints[${j}])`, "list each replica once"));
    else seen.set(id, i);
  });
  if (list.length > 1 && endpointId === undefined) {
    const first = typeof list[0] === "string" ? list[0] : list[0]!.base_url;
    errors.push(
      src.at(
        at,
        `endpoints lists ${list.length} replicas but no endpoint_id names them`,
        `answers are cached under the endpoint_id, one for the group, so adding or removing a replica re-keys nothing; endpoint_id: "${endpointOf(first)}" keeps the answers cached from that URL`,
        { key: true },
      ),
    );
  }
}
