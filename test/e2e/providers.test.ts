import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { build, InterruptedError } from "../../src/index.js";
import { REPO, runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startProxy } from "../helpers/proxy.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

describe("providers and request options", () => {
  let server: TestServer;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  const project = (
    model: string,
    steps = `  - id: s\n    generate: { prompt: "Tell me about {{ a }}" }`,
    dims = "a: [x, y]",
    output = `output: { path: dist/x.jsonl, format: jsonl, record: { a: "{{ a }}", s: "{{ s }}" } }`,
  ) => TempProject.create({ "dataset.yaml": `version: 1\nname: p\nmodel: ${model}\ndimensions:\n  ${dims}\nsteps:\n${steps}\n${output}\n` });

  test("headers reach the server but not the cache key; extra_body reaches it and is part of the key", async () => {
    const p = await project(`{ name: m, base_url: "${server.baseURL}", headers: { x-team: red }, extra_body: { user: u1 } }`);
    server.reset();
    const r = await runCli(["build"], p.dir, { OPENAI_API_KEY: "k" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0]!.headers["x-team"], "red");
    assert.equal(server.requests[0]!.body.user, "u1");
    await p.write({ "dataset.yaml": (await p.read("dataset.yaml")).replace("x-team: red", "x-team: blue") });
    server.reset();
    assert.equal((await runCli(["build"], p.dir, { OPENAI_API_KEY: "k" })).status, 0);
    assert.equal(server.requests.length, 0, "a header change must not invalidate the cache");
    await p.write({ "dataset.yaml": (await p.read("dataset.yaml")).replace("user: u1", "user: u2") });
    assert.equal((await runCli(["build"], p.dir, { OPENAI_API_KEY: "k" })).status, 0);
    assert.equal(server.requests.length, 2, "extra_body is sent, so it is part of the key");
    await p.remove();
  });

  test("an HTTPS endpoint: its certificate is checked, and a private CA is trusted through NODE_EXTRA_CA_CERTS", async () => {
    const tls = join(REPO, "test/fixtures/tls");
    const secure = await startTestServer({ tls: { key: readFileSync(join(tls, "key.pem"), "utf8"), cert: readFileSync(join(tls, "cert.pem"), "utf8") } });
    const p = await project(`{ name: m, base_url: "${secure.baseURL.replace("127.0.0.1", "localhost")}", retries: 0 }`);
    try {
      const untrusted = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: "k" });
      assert.equal(untrusted.status, 1, untrusted.stderr);
      assert.match(JSON.parse(untrusted.stdout).failures[0].reason, /certificate/i);
      assert.equal(secure.requests.length, 0, "nothing is sent to a server whose certificate fails");

      const trusted = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: "k", NODE_EXTRA_CA_CERTS: join(tls, "cert.pem") });
      assert.equal(trusted.status, 0, trusted.stderr);
      assert.equal(secure.requests.length, 2);
      assert.match(await p.read("dist/x.jsonl"), /TEST ANSWER/);
    } finally {
      await p.remove();
      await secure.close();
    }
  });

  test("the progress total (planned events) adds up to the requests made, cold and after an edit", async () => {
    const steps = `  - id: s\n    generate: { prompt: "Tell me about {{ a }} {{ b }}" }\n  - id: t\n    generate: { prompt: "Expand {{ s }}" }`;
    const p = await project(
      `{ name: m, base_url: "${server.baseURL}" }`,
      steps,
      `a: [${Array.from({ length: 30 }, (_, i) => `x${i}`).join(", ")}]\n  b: [p, q, r]`,
      `output: { path: dist/x.jsonl, prompt: "{{ a }}", completion: "{{ t }}" }`,
    );
    try {
      for (const edit of [false, true]) {
        if (edit) await p.write({ "dataset.yaml": (await p.read("dataset.yaml")).replace("x7,", "edited,") });
        let planned = 0;
        const r = await build({ cwd: p.dir, env: { OPENAI_API_KEY: "k" }, events: { planned: (n) => (planned += n) } });
        assert.equal(planned, r.requests, edit ? "after an edit" : "cold");
        assert.equal(r.requests, edit ? 6 : 180);
      }
    } finally {
      await p.remove();
    }
  });

  test("with a dedupe between generate steps, the total is told before the first request and only shrinks", async () => {
    // s answers are unique; `short` keeps the a-value they echo, so the dedupe keeps one sample in 3.
    const steps = [
      `  - id: s\n    generate: { prompt: "Tell me about {{ a }} {{ b }}" }`,
      `  - id: short\n    map: { field: s, replace: [{ pattern: "^TEST ANSWER \\\\w+: Tell me about (\\\\w+).*$", with: "$1", flags: s }] }`,
      `  - id: once\n    dedupe: { field: short }`,
      `  - id: t\n    generate: { prompt: "Expand {{ s }}" }`,
    ].join("\n");
    const p = await project(
      `{ name: m, base_url: "${server.baseURL}" }`,
      steps,
      `a: [${Array.from({ length: 30 }, (_, i) => `x${i}`).join(", ")}]\n  b: [p, q, r]`,
      `output: { path: dist/x.jsonl, prompt: "{{ a }} {{ b }}", completion: "{{ t }}" }`,
    );
    try {
      for (const [edit, made, told] of [
        [false, 120, 180],
        [true, 4, 6],
      ] as const) {
        if (edit) await p.write({ "dataset.yaml": (await p.read("dataset.yaml")).replace("x7,", "edited,") });
        const totals: number[] = [];
        let total = 0;
        let firstAnswerAt = -1;
        const r = await build({
          cwd: p.dir,
          env: { OPENAI_API_KEY: "k" },
          events: {
            planned: (n) => totals.push((total += n)),
            unplanned: (n) => totals.push((total -= n)),
            answered: () => {
              if (firstAnswerAt < 0) firstAnswerAt = totals.length;
            },
          },
        });
        assert.equal(r.requests, made, edit ? "after an edit" : "cold");
        assert.equal(totals[0], told, "the first total counts every step's requests, as if the dedupe dropped none");
        assert.equal(firstAnswerAt, 1, "it is told before the first answer");
        for (let i = 1; i < totals.length; i++) assert.ok(totals[i]! < totals[i - 1]!, `the total never grows: ${totals.join(" → ")}`);
        assert.equal(total, made, "and ends at the requests made");
      }
    } finally {
      await p.remove();
    }
  });

  test("a build whose signal is aborted before it starts makes no request", async () => {
    const p = await project(`{ name: m, base_url: "${server.baseURL}" }`);
    try {
      server.reset();
      const signal = AbortSignal.abort();
      await assert.rejects(build({ cwd: p.dir, env: { OPENAI_API_KEY: "k" }, signal }), (e: unknown) => e instanceof InterruptedError);
      assert.equal(server.requests.length, 0);
    } finally {
      await p.remove();
    }
  });

  test("HTTP_PROXY is used, NO_PROXY and loopback hosts go direct", async () => {
    const proxy = await startProxy({ "api.example.test": new URL(server.url).host });
    const viaName = `{ name: m, base_url: "http://api.example.test/v1", retries: 0 }`;
    const projects: TempProject[] = [];
    const build = async (model: string, env: Record<string, string>) => {
      const p = await project(model);
      projects.push(p);
      return runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: "k", HTTP_PROXY: proxy.url, ...env });
    };
    try {
      const credentialed = proxy.url.replace("http://", "http://me:s3cret@");
      const via = await build(viaName, { HTTP_PROXY: credentialed });
      assert.equal(via.status, 0, via.stderr);
      assert.equal(proxy.forwarded, 2, "both requests through the proxy (the name resolves nowhere else)");
      assert.deepEqual(proxy.auth, [`Basic ${Buffer.from("me:s3cret").toString("base64")}`, `Basic ${Buffer.from("me:s3cret").toString("base64")}`]);
      for (const file of ["dataset.lock", "dist/x.jsonl"]) assert.doesNotMatch(await projects[0]!.read(file), /s3cret/, file);
      assert.doesNotMatch(via.stderr + via.stdout, /s3cret/);

      const down = await build(viaName, { HTTP_PROXY: "http://me:s3cret@127.0.0.1:1" });
      assert.equal(down.status, 1);
      const reason = JSON.parse(down.stdout).failures[0].reason as string;
      assert.match(reason, /via proxy 127\.0\.0\.1:1/);
      assert.doesNotMatch(reason + down.stderr, /s3cret/);

      const bypass = await build(viaName, { NO_PROXY: "api.example.test" });
      assert.equal(bypass.status, 1, "direct, the name does not resolve");
      assert.match(JSON.parse(bypass.stdout).failures[0].reason, /ENOTFOUND|EAI_AGAIN|getaddrinfo/);
      assert.equal(proxy.forwarded, 2);

      const socks = await build(viaName, { HTTP_PROXY: "socks5://127.0.0.1:1080" });
      assert.equal(socks.status, 2, "an unusable proxy is the user's to fix");
      assert.match(socks.stderr, /HTTP_PROXY names a socks5 proxy/);

      const local = await build(`{ name: m, base_url: "${server.baseURL}" }`, {});
      assert.equal(local.status, 0, local.stderr);
      assert.equal(proxy.forwarded, 2, "a loopback endpoint is never proxied");
    } finally {
      for (const p of projects) await p.remove();
      await proxy.close();
    }
  });

  test("the proxy is the one build({ env }) names, whatever process.env holds; a redirect through it is not followed", async () => {
    const proxy = await startProxy({ "api.example.test": new URL(server.url).host });
    const p = await project(`{ name: m, base_url: "http://api.example.test/v1", retries: 0 }`);
    const saved = process.env.HTTP_PROXY;
    try {
      delete process.env.HTTP_PROXY;
      server.reset();
      const given = await build({ cwd: p.dir, env: { OPENAI_API_KEY: "k", HTTP_PROXY: proxy.url } });
      assert.equal(given.failed, 0);
      assert.equal(proxy.forwarded, 2, "through the build's proxy (the name resolves nowhere else)");
      assert.equal(server.requests.length, 2);

      // The reverse: a proxy in process.env only. Direct, the name does not resolve.
      process.env.HTTP_PROXY = proxy.url;
      await p.write({ "dataset.yaml": (await p.read("dataset.yaml")).replace("a: [x, y]", "a: [z]") });
      const ignored = await build({ cwd: p.dir, env: { OPENAI_API_KEY: "k" } });
      assert.equal(ignored.failed, 1);
      assert.match(ignored.failures[0]!.reason, /ENOTFOUND|EAI_AGAIN|getaddrinfo|DNS/);
      assert.equal(proxy.forwarded, 2, "process.env's proxy is not the build's");

      delete process.env.HTTP_PROXY;
      server.inject({ kind: "redirect", location: "http://elsewhere.example.test/v1/chat/completions" });
      const redirected = await build({ cwd: p.dir, env: { OPENAI_API_KEY: "k", HTTP_PROXY: proxy.url } });
      assert.equal(redirected.failed, 1);
      assert.match(redirected.failures[0]!.reason, /redirected to http:\/\/elsewhere\.example\.test\/v1\/chat\/completions \(HTTP 302\)/);
      assert.equal(proxy.forwarded, 3, "the redirect came back through the proxy and was not followed, there or around it");
    } finally {
      if (saved === undefined) delete process.env.HTTP_PROXY;
      else process.env.HTTP_PROXY = saved;
      server.reset();
      await p.remove();
      await proxy.close();
    }
  });

  test("HTTPS_PROXY tunnels with CONNECT, and the endpoint's certificate is still checked", async () => {
    const tls = join(REPO, "test/fixtures/tls");
    const secure = await startTestServer({ tls: { key: readFileSync(join(tls, "key.pem"), "utf8"), cert: readFileSync(join(tls, "cert.pem"), "utf8") } });
    const port = new URL(secure.url).port;
    const proxy = await startProxy({ [`api.example.test:${port}`]: `127.0.0.1:${port}` });
    const p = await project(`{ name: m, base_url: "https://api.example.test:${port}/v1", retries: 0 }`);
    try {
      const env = { OPENAI_API_KEY: "k", HTTPS_PROXY: proxy.url };
      const untrusted = await runCli(["build", "--json"], p.dir, env);
      assert.equal(untrusted.status, 1);
      assert.match(JSON.parse(untrusted.stdout).failures[0].reason, /certificate/i);
      const r = await runCli(["build", "--json"], p.dir, { ...env, NODE_EXTRA_CA_CERTS: join(tls, "cert.pem") });
      assert.equal(r.status, 0, r.stderr);
      assert.ok(proxy.tunnels >= 1, "a CONNECT tunnel");
      assert.equal(secure.requests.length, 2);
    } finally {
      await p.remove();
      await proxy.close();
      await secure.close();
    }
  });

  test("ollama needs no key and uses its base_url", async () => {
    const p = await project(`{ provider: ollama, name: llama3, base_url: "${server.baseURL}" }`);
    server.reset();
    const r = await runCli(["build", "--json"], p.dir);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0]!.body.model, "llama3");
    await p.remove();
  });

  test("the answering model snapshot, fingerprint, finish reason and usage are in the lock; truncated answers can be dropped", async () => {
    const p = await project(
      `{ name: gpt-test, base_url: "${server.baseURL}", params: { max_tokens: 5 } }`,
      `  - id: s\n    generate: { prompt: "Tell me about {{ a }}" }\n  - id: whole\n    filter: { field: s, drop_truncated: true }`,
    );
    server.reset();
    const r = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: "k" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).dropped, 2);
    const samples = (await p.read("dataset.lock"))
      .split("\n")
      .filter((l) => l.includes('"id"'))
      .map((l) => JSON.parse(l));
    for (const s of samples) {
      assert.equal(s.steps.s.model, "gpt-test-2024-07-18");
      assert.equal(s.steps.s.fp, "fp_test");
      assert.equal(s.steps.s.finish, "length");
      assert.equal(s.steps.s.usage[1], 5);
      assert.deepEqual(s.reason, { step: "whole", why: "s was cut off by max_tokens" });
    }
    await p.remove();
  });

  test("structured output: valid JSON passes; an invalid answer fails its sample, is not cached, and is retried next build", async () => {
    const schema = `{ type: object, properties: { answer: { type: string } }, required: [answer] }`;
    const p = await project(
      `{ name: m, base_url: "${server.baseURL}", retries: 0 }`,
      `  - id: s\n    generate: { prompt: "Tell me about {{ a }}", json_schema: ${schema} }`,
    );
    server.reset();
    server.inject({ kind: "malformed_content", match: "about y", times: 1 });
    const r = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: "k" });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(server.requests[0]!.body.response_format.type, "json_schema");
    const json = JSON.parse(r.stdout);
    assert.equal(json.failed, 1);
    assert.match(json.failures[0].reason, /not JSON|does not match/);
    const rows = (await p.read("dist/x.jsonl"))
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    assert.equal(rows.length, 1);
    assert.ok(JSON.parse(rows[0].s).answer, "the valid answer is JSON with its field");
    server.reset();
    const again = await runCli(["build", "--json"], p.dir, { OPENAI_API_KEY: "k" });
    assert.equal(again.status, 0, again.stderr);
    assert.equal(server.requests.length, 1, "only the failed sample is requested again");
    await p.remove();
  });
});
