// proxy-from-env ships no types.
declare module "proxy-from-env" {
  /** The proxy for a URL from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY (either case), honouring NO_PROXY; "" for none. */
  export function getProxyForUrl(url: string | URL): string;
}
