/**
 * The limits an endpoint states in OpenAI's x-ratelimit-* headers, which most gateways copy: the
 * per-minute limits, what is left of them, and when they are whole again. The scheduler paces by
 * them when the manifest declares no rpm/tpm.
 */
export interface StatedLimits {
  rpm?: number;
  tpm?: number;
  remainingRequests?: number;
  remainingTokens?: number;
  resetRequestsMs?: number;
  resetTokensMs?: number;
}

export function statedLimits(headers: Headers | undefined): StatedLimits | undefined {
  if (!headers) return undefined;
  const num = (name: string) => {
    const raw = headers.get(name);
    const n = raw === null ? Number.NaN : Number(raw);
    return Number.isFinite(n) && n >= 0 ? n : undefined;
  };
  const dur = (name: string) => {
    const raw = headers.get(name);
    return raw === null ? undefined : parseDuration(raw);
  };
  const limits: StatedLimits = {
    rpm: num("x-ratelimit-limit-requests") || undefined,
    tpm: num("x-ratelimit-limit-tokens") || undefined,
    remainingRequests: num("x-ratelimit-remaining-requests"),
    remainingTokens: num("x-ratelimit-remaining-tokens"),
    resetRequestsMs: dur("x-ratelimit-reset-requests"),
    resetTokensMs: dur("x-ratelimit-reset-tokens"),
  };
  return Object.values(limits).some((v) => v !== undefined) ? limits : undefined;
}

/** OpenAI's reset headers look like "1s", "6m0s", "250ms", "1.5s"; a bare number is seconds. */
export function parseDuration(s: string): number | undefined {
  if (/^\d+(\.\d+)?$/.test(s.trim())) return Number(s) * 1000;
  let total = 0;
  let matched = false;
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)/g)) {
    matched = true;
    const n = Number(m[1]);
    total += m[2] === "ms" ? n : m[2] === "s" ? n * 1000 : m[2] === "m" ? n * 60000 : n * 3600000;
  }
  return matched ? total : undefined;
}
