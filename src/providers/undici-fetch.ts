import { Agent, type Dispatcher, ProxyAgent, fetch as undiciFetch } from "undici";
import { CANCEL, type CancelInit, onCancel, responseTooLarge } from "./http-fetch.js";
import { proxyFor } from "./proxy.js";

/**
 * The transport measured against createHttpFetch, used only when SYNTHBUILD_TRANSPORT=undici
 * (`npm run bench -- transport`), with the same guarantees so the comparison is of what would
 * ship. undici is a devDependency: this module is loaded only under that switch.
 *
 * It is the npm package's fetch (Node 20's bundled copy may predate what is used here), with the
 * proxy chosen by proxyFor from the build's `env`, never from process.env, so `build({ env })`
 * decides; NO_PROXY as curl reads it and loopback always direct, which undici's own
 * EnvHttpProxyAgent does not do (it reads process.env, proxies loopback, and takes `example.com`
 * in NO_PROXY to mean that host alone). Redirects are never followed: a followed POST
 * is resent (or, on 301/302, turned into a GET) and the address is the user's to fix; so no
 * request can leave for another host, through the proxy or around it.
 *
 * The whole body is read before the response is handed over, for two reasons: a runaway body is
 * refused as it arrives (counted, not held), and the SDK's timeout, which it clears once fetch
 * resolves, still covers a body that stalls after its headers.
 */
export function createFetch(opts: { env: NodeJS.ProcessEnv; maxBodyBytes?: number }): typeof fetch {
  const direct = new Agent();
  const dispatchers = new Map<string, Dispatcher>();
  const dispatcherFor = (url: URL): { dispatcher: Dispatcher; via?: string } => {
    const route = proxyFor(url.href, opts.env);
    if (!route) return { dispatcher: direct };
    const key = `${route.url.href} ${route.authorization ?? ""}`;
    let dispatcher = dispatchers.get(key);
    // proxyTunnel false: plain http goes to the proxy in absolute form, as proxies expect and
    // log it; https still tunnels with CONNECT, so the endpoint's certificate is checked.
    if (!dispatcher) dispatchers.set(key, (dispatcher = new ProxyAgent({ uri: route.url.href, token: route.authorization, proxyTunnel: false })));
    return { dispatcher, via: route.label };
  };
  const max = opts.maxBodyBytes ?? Infinity;
  return async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input instanceof URL ? input.href : input.url);
    const { dispatcher, via } = dispatcherFor(url);
    let uncancel: (() => void) | undefined;
    try {
      return await fetchWhole(url, init, dispatcher, via, (off) => (uncancel = off));
    } finally {
      uncancel?.();
    }
  };

  async function fetchWhole(
    url: URL,
    init: RequestInit,
    dispatcher: Dispatcher,
    via: string | undefined,
    cancelled: (off: () => void) => void,
  ): Promise<Response> {
    let res: Awaited<ReturnType<typeof undiciFetch>>;
    try {
      // The SDK's init is the DOM type; undici's is its own, equal in what the SDK sets.
      // The caller's own signal (see CANCEL) ends the request as the SDK's does, through a
      // controller of the request's own: AbortSignal.any would register every request on the
      // build's signal for good (Node 20 never drops those).
      const cancel = (init as CancelInit)[CANCEL];
      let signal = init.signal;
      if (cancel) {
        const own = new AbortController();
        const sdk = init.signal;
        if (cancel.aborted) own.abort(cancel.reason);
        else if (sdk?.aborted) own.abort(sdk.reason);
        sdk?.addEventListener("abort", () => own.abort(sdk.reason), { once: true });
        cancelled(onCancel(cancel, () => own.abort(cancel.reason)));
        signal = own.signal;
      }
      res = await undiciFetch(url, { ...(init as object), signal, redirect: "manual", dispatcher });
    } catch (err) {
      // undici says only "fetch failed"; what failed is its cause. Through a proxy, the proxy
      // that could not be reached is what to fix, not the endpoint behind it.
      if (!(err instanceof TypeError) || !(err.cause instanceof Error) || init.signal?.aborted || (init as CancelInit)[CANCEL]?.aborted) throw err;
      throw new TypeError(via ? `${err.cause.message} (via proxy ${via})` : err.cause.message, { cause: err.cause });
    }
    const body = res.body ? await readCapped(res.body, Number(res.headers.get("content-length")), max) : null;
    const response = new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers as unknown as Headers });
    Object.defineProperty(response, "url", { value: res.url || url.href });
    return response;
  }
}

/** The body's bytes, refused once more than `max` have arrived (or are announced). */
async function readCapped(stream: ReadableStream<Uint8Array>, announced: number, max: number): Promise<Uint8Array> {
  if (announced > max) {
    await stream.cancel();
    throw responseTooLarge(max);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += chunk.byteLength;
    if (size > max) throw responseTooLarge(max); // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
}
