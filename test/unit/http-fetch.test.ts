import assert from "node:assert/strict";
import { getEventListeners } from "node:events";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { brotliCompressSync, deflateRawSync, gzipSync } from "node:zlib";
import { CANCEL, createHttpFetch, TRANSFER, TRANSFER_STALLED } from "../../src/providers/http-fetch.js";
import { startProxy } from "../helpers/proxy.js";

// The transport the openai SDK is given must answer as the global fetch does. Each route below is
// something a real endpoint or gateway does; the SDK-level behaviour (retries, faults, timeouts)
// is covered end to end against the test server in test/e2e/faults.test.ts.
const seen: { method?: string; headers: IncomingMessage["headers"]; body: string }[] = [];
const routes: Record<string, (req: IncomingMessage, res: ServerResponse, body: string) => void> = {
  "/echo": (req, res, body) => {
    res.setHeader("content-type", "application/json");
    res.setHeader("x-request-id", "req-1");
    res.setHeader("set-cookie", ["a=1", "b=2"]);
    res.end(JSON.stringify({ method: req.method, body }));
  },
  "/status/418": (_req, res) => {
    res.statusCode = 418;
    res.statusMessage = "I'm a teapot";
    res.end("short and stout");
  },
  "/no-content": (_req, res) => {
    res.statusCode = 204;
    res.end();
  },
  "/gzip": (_req, res) => {
    res.setHeader("content-encoding", "gzip");
    res.end(gzipSync(Buffer.from("squeezed ✓")));
  },
  "/raw-deflate": (_req, res) => {
    res.setHeader("content-encoding", "deflate");
    res.end(deflateRawSync(Buffer.from("raw")));
  },
  "/gzip-then-br": (_req, res) => {
    res.setHeader("content-encoding", "gzip, br");
    res.end(brotliCompressSync(gzipSync(Buffer.from("twice"))));
  },
  "/choices": (_req, res) => {
    // 300 Multiple Choices names a location but is not a redirect fetch follows.
    res.statusCode = 300;
    res.setHeader("location", "/echo");
    res.end("pick one");
  },
  "/unknown-coding": (_req, res) => {
    res.setHeader("content-encoding", "foo, gzip");
    res.end(gzipSync(Buffer.from("left alone")));
  },
  "/redirect": (_req, res) => {
    res.statusCode = 307;
    res.setHeader("location", "/echo");
    res.end();
  },
  "/cut": (_req, res) => {
    // Promise a long body, send part of it, then drop the connection.
    res.setHeader("content-length", "1000");
    res.write("partial");
    setTimeout(() => res.socket?.destroy(), 20);
  },
  "/hang": () => {},
  "/drip": (_req, res) => {
    res.write("one\n");
    void dripped.then(() => res.end("two\n"));
  },
  "/big": (_req, res) => {
    res.end(Buffer.alloc(4 * 1024 * 1024, "a"));
  },
  "/stall": (_req, res) => {
    res.setHeader("content-length", "1000");
    res.write("partial");
  },
};
// The second half of /drip, sent when the test says.
let drip!: () => void;
let dripped = new Promise<void>((r) => (drip = r));

let server: Server;
let base = "";
before(async () => {
  server = createServer((req, res) => {
    // Takes nothing of what is sent, and never answers: an upload that cannot go on.
    if (req.url === "/no-read") return void req.pause();
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      seen.push({ method: req.method, headers: req.headers, body });
      routes[req.url ?? ""]!(req, res, body);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

const httpFetch = createHttpFetch({ env: {} });

async function both(path: string, init?: RequestInit): Promise<[Response, Response]> {
  return [await httpFetch(base + path, init), await fetch(base + path, init)];
}

test("a POST answers with the status, headers and body the global fetch gives", async () => {
  const init = { method: "POST", headers: new Headers({ "content-type": "application/json", authorization: "Bearer k" }), body: JSON.stringify({ q: "é" }) };
  const [ours, theirs] = await both("/echo", init);
  assert.equal(ours.status, theirs.status);
  assert.equal(ours.ok, true);
  assert.deepEqual(await ours.json(), await theirs.json());
  assert.equal(ours.headers.get("x-request-id"), "req-1");
  assert.equal(ours.headers.get("content-type"), theirs.headers.get("content-type"));
  assert.deepEqual(ours.headers.getSetCookie(), ["a=1", "b=2"]);
  const sent = seen.at(-2)!;
  assert.equal(sent.headers.authorization, "Bearer k");
  assert.equal(sent.headers["content-length"], String(Buffer.byteLength(init.body)), "a length, not chunked encoding");
  assert.equal(sent.headers["transfer-encoding"], undefined);
});

test("a byte body is sent as is", async () => {
  const res = await httpFetch(`${base}/echo`, { method: "PUT", body: new TextEncoder().encode("bytes") });
  assert.deepEqual(await res.json(), { method: "PUT", body: "bytes" });
});

test("error statuses come back as responses, with their text", async () => {
  const [ours, theirs] = await both("/status/418");
  assert.equal(ours.status, 418);
  assert.equal(ours.ok, false);
  assert.equal(ours.statusText, theirs.statusText);
  assert.equal(await ours.text(), "short and stout");
});

test("204 has no body, as a standard Response requires", async () => {
  const res = await httpFetch(`${base}/no-content`);
  assert.equal(res.status, 204);
  assert.equal(res.body, null);
});

test("a compressed body is decoded, as fetch decodes it", async () => {
  for (const [path, text] of [
    ["/gzip", "squeezed ✓"],
    ["/raw-deflate", "raw"],
    ["/gzip-then-br", "twice"],
    ["/unknown-coding", gzipSync(Buffer.from("left alone")).toString("latin1")],
  ]) {
    const [ours, theirs] = await both(path!);
    const read = async (r: Response) => (path === "/unknown-coding" ? Buffer.from(await r.arrayBuffer()).toString("latin1") : r.text());
    assert.equal(await read(theirs), text, `global fetch, ${path}`);
    assert.equal(await read(ours), text, path);
  }
});

test("only redirects are repeated elsewhere: a 300 is an answer, sent once", async () => {
  const before = seen.length;
  const res = await httpFetch(`${base}/choices`, { method: "POST", body: "once" });
  assert.equal(res.status, 300);
  assert.equal(await res.text(), "pick one");
  assert.equal(seen.length, before + 1);
});

test("HEAD has no body; the response knows its URL", async () => {
  const res = await httpFetch(`${base}/echo`, { method: "HEAD" });
  assert.equal(res.status, 200);
  assert.equal(res.body, null);
  assert.equal(res.url, `${base}/echo`);
});

test("a redirect is the answer, never followed, whatever redirect asks", async () => {
  for (const redirect of ["follow", "manual", undefined] as const) {
    const before = seen.length;
    const res = await httpFetch(`${base}/redirect`, { method: "POST", body: "once", ...(redirect ? { redirect } : {}) });
    assert.equal(res.status, 307, String(redirect));
    assert.equal(res.headers.get("location"), "/echo");
    assert.equal(seen.length, before + 1, `${redirect}: sent once, not again where it points`);
  }
});

test("what it cannot send itself is refused, never handed to a fetch that ignores the proxy", async () => {
  const before = seen.length;
  const stream = new ReadableStream({
    start: (c) => {
      c.enqueue(new TextEncoder().encode("streamed"));
      c.close();
    },
  });
  await assert.rejects(httpFetch(`${base}/echo`, { method: "POST", body: stream, duplex: "half" } as RequestInit), /only a text or byte body/);
  await assert.rejects(httpFetch("data:text/plain,hi"), /not an http\(s\) URL/);
  assert.equal(seen.length, before);
});

test("the proxy is the one the env given names, not process.env's; a redirect through it is not followed", async () => {
  const proxy = await startProxy({ "api.example.test": new URL(base).host });
  const saved = process.env.HTTP_PROXY;
  try {
    delete process.env.HTTP_PROXY;
    const viaEnv = createHttpFetch({ env: { HTTP_PROXY: proxy.url } });
    const res = await viaEnv("http://api.example.test/echo", { method: "POST", body: "proxied" });
    assert.deepEqual(await res.json(), { method: "POST", body: "proxied" });
    assert.equal(proxy.forwarded, 1, "through the proxy: the name resolves nowhere else");

    const redirected = await viaEnv("http://api.example.test/redirect", { method: "POST", body: "x", redirect: "follow" });
    assert.equal(redirected.status, 307);
    assert.equal(proxy.forwarded, 2, "the redirect came back through the proxy and went nowhere after");

    process.env.HTTP_PROXY = proxy.url;
    await assert.rejects(createHttpFetch({ env: {} })("http://api.example.test/echo"), /ENOTFOUND|EAI_AGAIN|getaddrinfo/);
    assert.equal(proxy.forwarded, 2, "process.env's proxy is not the build's");
  } finally {
    if (saved === undefined) delete process.env.HTTP_PROXY;
    else process.env.HTTP_PROXY = saved;
    await proxy.close();
  }
});

test("a connection dropped mid-body rejects instead of answering with part of it", async () => {
  await assert.rejects(httpFetch(`${base}/cut`), (err: Error) => !(err instanceof Response) && /closed|aborted|socket|reset/i.test(err.message));
});

test("an abort rejects with the AbortError the SDK recognises, before or during the request", async () => {
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(httpFetch(`${base}/echo`, { signal: pre.signal }), { name: "AbortError" });

  const during = new AbortController();
  const pending = httpFetch(`${base}/hang`, { signal: during.signal });
  setTimeout(() => during.abort(), 30);
  await assert.rejects(pending, { name: "AbortError" });
});

test("the caller's one signal (CANCEL) ends every request in flight with one listener, and leaves answered ones alone", async () => {
  const build = new AbortController();
  const cancel = { [CANCEL]: build.signal } as RequestInit;
  const answered = await Promise.all(Array.from({ length: 10 }, () => httpFetch(`${base}/echo`, { method: "POST", body: "x", ...cancel })));
  const hanging = Array.from({ length: 10 }, () => httpFetch(`${base}/hang`, cancel));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(getEventListeners(build.signal, "abort").length, 1);
  build.abort();
  for (const p of hanging) await assert.rejects(p, { name: "AbortError" });
  // An answer handed over before the abort is still whole.
  assert.deepEqual(await answered[0]!.json(), { method: "POST", body: "x" });
  await assert.rejects(httpFetch(`${base}/echo`, cancel), { name: "AbortError" });
  assert.equal(getEventListeners(build.signal, "abort").length, 0);
});

test("a refused connection rejects", async () => {
  const closed = createServer();
  await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
  const port = (closed.address() as AddressInfo).port;
  await new Promise<void>((r) => closed.close(() => r()));
  await assert.rejects(httpFetch(`http://127.0.0.1:${port}/`), /ECONNREFUSED/);
});

const transfer = (stallMs: number, init: RequestInit = {}) => ({ ...init, [TRANSFER]: { stallMs } }) as RequestInit;

test("a transfer's 2xx body is handed over as it arrives, decoded as fetch decodes it; other answers are read whole as before", async () => {
  dripped = new Promise<void>((r) => (drip = r));
  const res = await httpFetch(`${base}/drip`, transfer(5000));
  const reader = res.body!.getReader();
  const first = await reader.read();
  assert.equal(new TextDecoder().decode(first.value), "one\n", "the first piece, before the server sent the rest");
  drip();
  let rest = "";
  for (let c = await reader.read(); !c.done; c = await reader.read()) rest += new TextDecoder().decode(c.value);
  assert.equal(rest, "two\n");

  for (const [path, text] of [
    ["/gzip", "squeezed ✓"],
    ["/raw-deflate", "raw"],
    ["/gzip-then-br", "twice"],
  ])
    assert.equal(await (await httpFetch(base + path!, transfer(5000))).text(), text, path);
  const refused = await httpFetch(`${base}/status/418`, transfer(5000));
  assert.equal(refused.status, 418);
  assert.equal(await refused.text(), "short and stout");
});

test("a transfer that stops moving fails after its stall time: a body that stops arriving, an upload the endpoint stops taking", async () => {
  const res = await httpFetch(`${base}/stall`, transfer(100));
  assert.equal(res.status, 200);
  await assert.rejects(
    res.text(),
    (err: Error & { code?: string }) => err.code === TRANSFER_STALLED && /stalled: nothing received for 0.1 s/.test(err.message),
  );

  // Far more than the socket buffers hold: the writes stop once they are full.
  const big = new Uint8Array(64 * 1024 * 1024);
  await assert.rejects(
    httpFetch(`${base}/no-read`, transfer(150, { method: "POST", body: big })),
    (err: Error & { code?: string }) => err.code === TRANSFER_STALLED && /took no byte of the upload/.test(err.message),
  );
});

test("a reader slower than the stall time is no stall: the socket waits for it", async () => {
  const res = await httpFetch(`${base}/big`, transfer(100));
  await new Promise((r) => setTimeout(r, 250));
  assert.equal((await res.arrayBuffer()).byteLength, 4 * 1024 * 1024);
});

test("an abort while a transfer's body streams fails the read with the AbortError", async () => {
  dripped = new Promise<void>((r) => (drip = r));
  const ctl = new AbortController();
  const res = await httpFetch(`${base}/drip`, transfer(5000, { signal: ctl.signal }));
  const reader = res.body!.getReader();
  await reader.read();
  ctl.abort();
  await assert.rejects(reader.read(), { name: "AbortError" });
  drip();
});
