import assert from "node:assert/strict";
import { test } from "node:test";
import { UsageError } from "../../src/errors.js";
import { proxyFor as proxyForIn } from "../../src/providers/proxy.js";

// The environment is the build's, passed in: these tests never touch process.env.
let env: Record<string, string> = {};
const setEnv = (e: Record<string, string>) => {
  env = e;
};
const proxyFor = (url: string) => proxyForIn(url, env);

test("HTTPS_PROXY for https, HTTP_PROXY for http, ALL_PROXY for either; lower case first, as curl", () => {
  setEnv({ HTTPS_PROXY: "http://upper:3128", https_proxy: "http://lower:3128", HTTP_PROXY: "http://plain:8080" });
  assert.equal(proxyFor("https://api.openai.com/v1")?.label, "lower:3128");
  assert.equal(proxyFor("http://gateway.example/v1")?.label, "plain:8080");
  setEnv({ ALL_PROXY: "http://all:1080" });
  assert.equal(proxyFor("https://api.openai.com/v1")?.label, "all:1080");
});

test("a proxy without a scheme is http://, as curl reads it, whatever the endpoint's scheme", () => {
  setEnv({ HTTPS_PROXY: "proxy.corp:3128" });
  assert.equal(proxyFor("https://api.openai.com/v1")?.url.href, "http://proxy.corp:3128/");
});

test("credentials leave the URL and travel as Proxy-Authorization", () => {
  setEnv({ HTTPS_PROXY: "http://me:p%40ss@proxy.corp:3128" });
  const r = proxyFor("https://api.openai.com/v1")!;
  assert.equal(r.url.href, "http://proxy.corp:3128/");
  assert.equal(r.authorization, `Basic ${Buffer.from("me:p@ss").toString("base64")}`);
});

test("NO_PROXY hosts and loopback hosts go direct", () => {
  setEnv({ HTTPS_PROXY: "http://proxy:3128", HTTP_PROXY: "http://proxy:3128", NO_PROXY: "internal.example, .corp.example" });
  assert.equal(proxyFor("https://internal.example/v1"), undefined);
  assert.equal(proxyFor("https://llm.corp.example/v1"), undefined);
  for (const u of ["http://localhost:8000/v1", "http://127.0.0.1:11434/v1", "http://[::1]:8000/v1"]) assert.equal(proxyFor(u), undefined, u);
  assert.ok(proxyFor("https://api.openai.com/v1"));
});

test("NO_PROXY as curl reads it: an entry covers its subdomains; ports; *", () => {
  const proxied = (url: string, noProxy: string) => {
    setEnv({ HTTPS_PROXY: "http://proxy:3128", HTTP_PROXY: "http://proxy:3128", NO_PROXY: noProxy });
    return proxyFor(url) !== undefined;
  };
  assert.equal(proxied("https://api.example.com/v1", "example.com"), false);
  assert.equal(proxied("https://example.com/v1", ".example.com"), false);
  assert.equal(proxied("https://a.b.example.com/v1", "*.example.com"), false);
  assert.equal(proxied("https://notexample.com/v1", "example.com"), true, "a domain boundary, not a bare suffix");
  assert.equal(proxied("http://gw.corp:8080/v1", "gw.corp:8080"), false);
  assert.equal(proxied("http://gw.corp:9090/v1", "gw.corp:8080"), true);
  assert.equal(proxied("https://api.openai.com/v1", "*"), false);
  assert.equal(proxied("https://api.openai.com/v1", "example.com, internal"), true);
  assert.equal(proxied("http://[fd00::5]:8000/v1", "fd00::5"), false, "a bare IPv6 address");
  assert.equal(proxied("http://[fd00::5]:8000/v1", "[fd00::5]:8000"), false);
  assert.equal(proxied("http://[fd00::5]:8000/v1", "[fd00::5]:9000"), true);
});

test("an unusable proxy is a user error naming the variable, never its value", () => {
  for (const [value, message] of [
    ["socks5://me:s3cret@127.0.0.1:1080", /HTTPS_PROXY names a socks5 proxy/],
    ["http://me:s3cr#t@proxy:3128", /HTTPS_PROXY is not a URL/],
  ] as const) {
    setEnv({ HTTPS_PROXY: value });
    assert.throws(
      () => proxyFor("https://api.openai.com/v1"),
      (e: unknown) => e instanceof UsageError && message.test(e.message) && !`${e.message} ${e.hint}`.includes("s3c"),
      value,
    );
  }
});

test("only the environment given is read: a proxy in process.env is not used, one given is, whatever process.env holds", () => {
  const saved = process.env.HTTPS_PROXY;
  process.env.HTTPS_PROXY = "http://from-process:3128";
  try {
    assert.equal(proxyForIn("https://api.openai.com/v1", {}), undefined);
    assert.equal(proxyForIn("https://api.openai.com/v1", { HTTPS_PROXY: "http://given:3128" })?.label, "given:3128");
    assert.equal(proxyForIn("https://api.openai.com/v1", { HTTPS_PROXY: "http://given:3128", NO_PROXY: "openai.com" }), undefined);
  } finally {
    if (saved === undefined) delete process.env.HTTPS_PROXY;
    else process.env.HTTPS_PROXY = saved;
  }
});
