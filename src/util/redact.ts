/**
 * The one redaction of secrets, applied wherever a message is stored or printed (failure reasons
 * in the lock and `--json`, warnings, events, the CLI's output, the SDK's log). Endpoints echo
 * keys back ("Incorrect API key provided: sk-…") and the lock is committed to git, so a message is
 * never trusted to be free of them: known secret values, Authorization-style header values and
 * anything shaped like an OpenAI-style key are replaced.
 */
export type Redact = (text: string) => string;

const MASK = "***";

/** Values shorter than this are not treated as secrets: masking "x" everywhere would garble every message. */
const MIN_SECRET = 6;

/** Environment variables whose values are secrets by their name alone. */
const SECRET_NAME = /(^|_)(API_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$/i;

const PATTERNS: [RegExp, string][] = [
  // Header values as they appear in dumps and error texts: "Authorization: Bearer …", "api-key=…".
  [/\b(authorization|proxy-authorization|api-key|x-api-key)(["']?\s*[:=]\s*["']?)(?:(?:bearer|basic|token)\s+)?[^\s"',;}]+/gi, `$1$2${MASK}`],
  // Prose says "basic" and "bearer" too: only the capitalised scheme with a token-shaped value.
  [/\bBearer\s+[A-Za-z0-9._~+/=-]{6,}/g, `Bearer ${MASK}`],
  // OpenAI (sk-…, sk-proj-…), Anthropic (sk-ant-…), OpenRouter (sk-or-…) and their lookalikes.
  [/\bsk-[A-Za-z0-9_-]{6,}/g, `sk-${MASK}`],
];

/** A redaction that masks these values (and every pattern above). */
export function redactor(secrets: Iterable<string | undefined>): Redact {
  // Longest first, so a secret that contains another is masked whole.
  const values = [...new Set([...secrets].filter((s): s is string => typeof s === "string" && s.length >= MIN_SECRET))].sort((a, b) => b.length - a.length);
  return (text: string) => {
    let out = text;
    for (const v of values) if (out.includes(v)) out = out.split(v).join(MASK);
    for (const [re, to] of PATTERNS) out = out.replace(re, to);
    return out;
  };
}

/**
 * The secrets an environment holds: the variables named (the manifest's `api_key_env`s) and
 * every variable whose name says it is a key, token, secret or password.
 */
export function secretsIn(env: NodeJS.ProcessEnv, names: Iterable<string> = []): string[] {
  const out = new Set<string>();
  for (const n of names) if (env[n]) out.add(env[n]!);
  for (const [n, v] of Object.entries(env)) if (v && SECRET_NAME.test(n)) out.add(v);
  return [...out];
}

/** A URL as it may be shown: without a user name or password in it. */
export function displayUrl(url: string): string {
  try {
    const u = new URL(url);
    if (!u.username && !u.password) return url;
    u.username = "";
    u.password = "";
    return u.href;
  } catch {
    return url;
  }
}
