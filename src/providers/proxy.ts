import { UsageError } from "../errors.js";

/** A proxy a request goes through: its URL without credentials, which travel only in a header. */
export interface ProxyRoute {
  readonly url: URL;
  readonly authorization?: string;
  /** host:port, for messages (never the credentials). */
  readonly label: string;
}

const LOOPBACK = /^(localhost|127(\.\d{1,3}){3}|\[::1\])$/i;

/**
 * The proxy HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (either case) name for a request URL, unless
 * NO_PROXY lists its host; undefined for a direct connection. Read from `env`, the build's
 * environment: `build({ env })` decides, whatever process.env holds.
 * Loopback hosts are always direct, as in Go's HTTP client: a local vLLM or Ollama keeps working
 * where a proxy is set for the internet. A proxy that cannot be used is a user error, naming the
 * variable but never its value (it may hold a password).
 */
export function proxyFor(target: string, env: NodeJS.ProcessEnv): ProxyRoute | undefined {
  const t = new URL(target);
  if (t.protocol !== "http:" && t.protocol !== "https:") return undefined;
  const proto = t.protocol.slice(0, -1);
  const variable = [`${proto}_proxy`, `${proto.toUpperCase()}_PROXY`, "all_proxy", "ALL_PROXY"].find((v) => env[v]);
  if (!variable || LOOPBACK.test(t.hostname) || noProxy(t, env)) return undefined;
  const raw = env[variable]!;
  let url: URL;
  try {
    // curl reads a proxy written without a scheme as http://, not as the target's scheme.
    url = new URL(raw.includes("://") ? raw : `http://${raw}`);
  } catch {
    throw new UsageError(`${variable} is not a URL`, "write it as http://host:port, with any credentials percent-encoded (http://user:p%40ss@host:port)");
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new UsageError(
      `${variable} names a ${url.protocol.slice(0, -1)} proxy; only HTTP(S) proxies are supported`,
      "use an HTTP proxy: it reaches HTTPS endpoints with CONNECT",
    );
  }
  const authorization = url.username
    ? `Basic ${Buffer.from(`${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`).toString("base64")}`
    : undefined;
  url.username = "";
  url.password = "";
  return { url, authorization, label: url.host };
}

/**
 * NO_PROXY as curl and Go read it (which neither proxy-from-env nor undici does): an entry
 * matches its host and every subdomain (`example.com` covers `api.example.com`), with or without
 * a leading `.` or `*.`; `host:port` only that port; `*` everything.
 */
function noProxy(t: URL, env: NodeJS.ProcessEnv): boolean {
  const list = (env.no_proxy || env.NO_PROXY || "").toLowerCase();
  const host = t.hostname.toLowerCase().replace(/^\[|\]$/g, "");
  const port = t.port || (t.protocol === "https:" ? "443" : "80");
  return list.split(/[\s,]+/).some((raw) => {
    if (raw === "*") return true;
    // host, host:port, [v6], [v6]:port, or a bare v6 address (more than one colon).
    const bracketed = /^\[(.+)\](?::(\d+))?$/.exec(raw);
    const [name, only] = bracketed ? [bracketed[1]!, bracketed[2]] : raw.split(":").length === 2 ? raw.split(":") : [raw, undefined];
    const domain = name!.replace(/^\*?\./, "");
    if (!domain || (only && only !== port)) return false;
    return host === domain || host.endsWith(`.${domain}`);
  });
}
