import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, test } from "node:test";
import { RESPONSE_TOO_LARGE } from "../../src/providers/http-fetch.js";
import { createFetch } from "../../src/providers/undici-fetch.js";
import { startProxy } from "../helpers/proxy.js";

// The transport `npm run bench -- transport` measures against http-fetch: the comparison is fair
// only if it keeps the same guarantees, checked here.
let server: Server;
let base = "";
let hits = 0;
before(async () => {
  server = createServer((req, res) => {
    hits++;
    req.resume();
    if (req.url === "/redirect") {
      res.writeHead(307, { location: "http://elsewhere.example.test/echo", "content-length": 0 });
      res.end();
    } else if (req.url === "/chunked") {
      res.write("0123456789");
      res.end("0123456789");
    } else res.end("twenty bytes exactly");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test("a redirect is the answer, never followed", async () => {
  const before = hits;
  const res = await createFetch({ env: {} })(`${base}/redirect`, { method: "POST", body: "x", redirect: "follow" });
  assert.equal(res.status, 307);
  assert.equal(res.headers.get("location"), "http://elsewhere.example.test/echo");
  assert.equal(hits, before + 1);
});

test("a body over the cap is refused, announced or not", async () => {
  const small = createFetch({ env: {}, maxBodyBytes: 19 });
  for (const path of ["/echo", "/chunked"]) await assert.rejects(small(base + path), (e: { code?: string }) => e.code === RESPONSE_TOO_LARGE, path);
  assert.equal(await (await createFetch({ env: {}, maxBodyBytes: 20 })(`${base}/echo`)).text(), "twenty bytes exactly");
});

test("the proxy is the one the env given names, not process.env's", async () => {
  const proxy = await startProxy({ "api.example.test": new URL(base).host });
  const saved = process.env.HTTP_PROXY;
  try {
    delete process.env.HTTP_PROXY;
    const res = await createFetch({ env: { HTTP_PROXY: proxy.url.replace("http://", "http://me:s3cret@") } })("http://api.example.test/echo");
    assert.equal(await res.text(), "twenty bytes exactly");
    assert.equal(proxy.forwarded, 1, "in absolute form through the proxy, not a CONNECT tunnel");
    assert.deepEqual(proxy.auth, [`Basic ${Buffer.from("me:s3cret").toString("base64")}`]);

    process.env.HTTP_PROXY = proxy.url;
    await assert.rejects(createFetch({ env: {} })("http://api.example.test/echo"), /ENOTFOUND|EAI_AGAIN|getaddrinfo/);
    assert.equal(proxy.forwarded, 1);
  } finally {
    if (saved === undefined) delete process.env.HTTP_PROXY;
    else process.env.HTTP_PROXY = saved;
    await proxy.close();
  }
});
