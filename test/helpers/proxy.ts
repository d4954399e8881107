import { createServer, request } from "node:http";
import type { AddressInfo } from "node:net";
import { connect } from "node:net";

/**
 * A forward proxy for tests: plain requests in absolute form, and CONNECT tunnels for HTTPS.
 * Host names in `hosts` are sent to the address given (there is no DNS for them), which shows a
 * request went through the proxy: directly, the name would not resolve.
 */
export async function startProxy(
  hosts: Record<string, string>,
): Promise<{ url: string; forwarded: number; tunnels: number; auth: (string | undefined)[]; close(): Promise<void> }> {
  const stats = { forwarded: 0, tunnels: 0 };
  const auth: (string | undefined)[] = [];
  const route = (host: string) => hosts[host] ?? host;
  const server = createServer((req, res) => {
    stats.forwarded++;
    auth.push(req.headers["proxy-authorization"]);
    const target = new URL(req.url!);
    const [host, port] = route(target.host).split(":");
    const upstream = request({ host, port, path: target.pathname + target.search, method: req.method, headers: { ...req.headers, host: target.host } }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    upstream.on("error", () => res.destroy());
    req.pipe(upstream);
  });
  server.on("connect", (req, socket, head) => {
    stats.tunnels++;
    auth.push(req.headers["proxy-authorization"]);
    const [host, port] = route(req.url!).split(":");
    const upstream = connect(Number(port), host, () => {
      socket.write("HTTP/1.1 200 Connection Established\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    upstream.on("error", () => socket.destroy());
    socket.on("error", () => upstream.destroy());
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get forwarded() {
      return stats.forwarded;
    },
    get tunnels() {
      return stats.tunnels;
    },
    auth,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
