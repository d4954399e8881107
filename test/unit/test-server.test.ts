/**
 * Tests for the deterministic OpenAI-compatible test server, exercised through
 * the real `openai` SDK (no mocks) and raw fetch.
 *
 * Every `assert.ok` carries a message on purpose: without one, Node's assert
 * re-reads the call site's source to build a message, which can spin forever on
 * tsx-transpiled files and hang the runner instead of failing the test.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { performance } from "node:perf_hooks";
import { createInterface } from "node:readline";
import { after, afterEach, before, beforeEach, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { answerFor, startTestServer, type TestServer } from "../server/openai-test-server.js";

const MODEL = "gpt-4o-mini";

function client(server: TestServer, extra: ConstructorParameters<typeof OpenAI>[0] = {}): OpenAI {
  // A finite default timeout so a broken server fails a test instead of hanging the runner.
  return new OpenAI({ apiKey: "test-key", baseURL: server.baseURL, maxRetries: 0, timeout: 5000, ...extra });
}

function ask(c: OpenAI, content: string, extra: Record<string, unknown> = {}, reqOpts: OpenAI.RequestOptions = {}) {
  return c.chat.completions.create({ model: MODEL, messages: [{ role: "user", content }], ...extra } as OpenAI.ChatCompletionCreateParamsNonStreaming, reqOpts);
}

/** Run `fn`, expecting it to reject; return the error for further assertions. */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  assert.fail("expected the call to reject");
}

async function postJson(url: string, body: unknown): Promise<Response> {
  return fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
}

/** Poll until `cond()` holds (server-side bookkeeping may lag the client by a tick). */
async function eventually(cond: () => boolean, ms = 1000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail("condition not reached in time");
    await new Promise((r) => setTimeout(r, 10));
  }
}

const words = (s: string) => s.split(" ").filter(Boolean).length;

describe("test server: answers and faults (shared server)", () => {
  let server: TestServer;
  let openai: OpenAI;

  before(async () => {
    server = await startTestServer({ answerWords: 40 });
    openai = client(server);
  });
  after(() => server.close());
  beforeEach(() => server.reset());

  test("answers are deterministic, prompt-specific and equal to answerFor()", async () => {
    const prompt = "Write a haiku about the quiet sea at dawn, please, with feeling";
    const a = await ask(openai, prompt);
    const b = await ask(openai, prompt);
    const c = await ask(openai, "Explain recursion to a five year old child using a story");
    const textA = a.choices[0]!.message.content!;
    assert.match(textA, /^TEST ANSWER [0-9a-f]{8}: /);
    assert.equal(b.choices[0]!.message.content, textA);
    assert.notEqual(c.choices[0]!.message.content, textA);
    // The first words of the prompt are echoed so tests can tell which prompt produced it.
    assert.ok(textA.includes("Write a haiku about the quiet sea at"), textA);
    // 3 prefix words + answerWords.
    assert.equal(words(textA), 3 + 40);
    assert.equal(a.choices[0]!.finish_reason, "stop");
    // The pure function predicts exactly what the server sent.
    assert.deepEqual(answerFor(server.requests[0]!.body, 40), { text: textA, finish_reason: "stop" });
    assert.equal(server.requests.length, 3);
    assert.equal(server.requests[2]!.body.messages[0].content, "Explain recursion to a five year old child using a story");
  });

  test("canonical content: key order is irrelevant, generation params matter", async () => {
    const url = `${server.baseURL}/chat/completions`;
    const content = async (body: unknown) => {
      const res = await postJson(url, body);
      assert.equal(res.status, 200);
      return ((await res.json()) as any).choices[0].message.content as string;
    };
    const one = await content({ model: MODEL, messages: [{ role: "user", content: "hi there" }], temperature: 0.7, seed: 1 });
    const two = await content({ seed: 1, temperature: 0.7, messages: [{ content: "hi there", role: "user" }], model: MODEL });
    const hotter = await content({ model: MODEL, messages: [{ role: "user", content: "hi there" }], temperature: 0.2, seed: 1 });
    const otherModel = await content({ model: "gpt-4o", messages: [{ role: "user", content: "hi there" }], temperature: 0.7, seed: 1 });
    // Transport-only options (stream_options, user) don't change the answer.
    const withUser = await content({ model: MODEL, messages: [{ role: "user", content: "hi there" }], temperature: 0.7, seed: 1, user: "u1" });
    assert.equal(two, one);
    assert.equal(withUser, one);
    assert.notEqual(hotter, one);
    assert.notEqual(otherModel, one);
  });

  test("max_tokens / max_completion_tokens truncate with finish_reason length", async () => {
    const r = await ask(openai, "Tell me a long story about dragons", { max_tokens: 5 });
    assert.equal(r.choices[0]!.finish_reason, "length");
    assert.equal(words(r.choices[0]!.message.content!), 5);
    assert.equal(r.usage!.completion_tokens, 5);
    const r2 = await ask(openai, "Tell me a long story about dragons", { max_completion_tokens: 7 });
    assert.equal(r2.choices[0]!.finish_reason, "length");
    assert.equal(words(r2.choices[0]!.message.content!), 7);
    // A generous limit does not truncate.
    const r3 = await ask(openai, "Tell me a long story about dragons", { max_tokens: 1000 });
    assert.equal(r3.choices[0]!.finish_reason, "stop");
    assert.equal(words(r3.choices[0]!.message.content!), 43);
  });

  test("response looks like an OpenAI chat.completion (snapshot model, fingerprint, usage, ids)", async () => {
    const prompt = "abcdefghijklmnopqrstuvwxyz"; // 26 chars -> ceil(26/4) = 7 prompt tokens
    const { data, response } = await ask(openai, prompt).withResponse();
    assert.equal(data.object, "chat.completion");
    assert.equal(data.id, "chatcmpl-test-1");
    assert.equal(data.created, 1721260800);
    assert.equal(data.model, "gpt-4o-mini-2024-07-18");
    assert.equal(data.system_fingerprint, "fp_test");
    assert.equal(data.choices[0]!.message.role, "assistant");
    assert.equal(data.usage!.prompt_tokens, 7);
    assert.equal(data.usage!.completion_tokens, words(data.choices[0]!.message.content!));
    assert.equal(data.usage!.total_tokens, data.usage!.prompt_tokens + data.usage!.completion_tokens);
    assert.equal(response.headers.get("x-request-id"), "req_test_1");
    assert.equal((data as { _request_id?: string | null })._request_id, "req_test_1");
    const second = await ask(openai, prompt);
    assert.equal(second.id, "chatcmpl-test-2");
  });

  test("n > 1 returns distinct deterministic choices", async () => {
    const r = await ask(openai, "Give me options", { n: 3 });
    assert.equal(r.choices.length, 3);
    assert.equal(new Set(r.choices.map((c) => c.message.content)).size, 3);
    assert.equal(r.choices[0]!.message.content, answerFor(server.requests[0]!.body, 40).text);
  });

  test("json_object and json_schema response formats yield parseable JSON", async () => {
    const obj = await ask(openai, "Return JSON", { response_format: { type: "json_object" } });
    const parsed = JSON.parse(obj.choices[0]!.message.content!);
    assert.match(parsed.answer, /^TEST ANSWER [0-9a-f]{8}: Return JSON/);

    const schema = {
      type: "object",
      properties: {
        question: { type: "string" },
        difficulty: { type: "string", enum: ["easy", "hard"] },
        score: { type: "integer", minimum: 1, maximum: 5 },
        tags: { type: "array", items: { type: "string" } },
        meta: { $ref: "#/$defs/Meta" },
      },
      required: ["question", "difficulty", "score", "tags", "meta"],
      additionalProperties: false,
      $defs: { Meta: { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false } },
    };
    const rf = { type: "json_schema", json_schema: { name: "qa", strict: true, schema } };
    const r = await ask(openai, "Make a question", { response_format: rf });
    const v = JSON.parse(r.choices[0]!.message.content!);
    assert.match(v.question, /^TEST ANSWER [0-9a-f]{8}: Make a question/);
    assert.ok(["easy", "hard"].includes(v.difficulty), `difficulty ${v.difficulty}`);
    assert.ok(Number.isInteger(v.score) && v.score >= 1 && v.score <= 5, `score ${v.score}`);
    assert.ok(Array.isArray(v.tags) && v.tags.every((t: unknown) => typeof t === "string"), "tags must be strings");
    assert.equal(typeof v.meta.ok, "boolean");
    const again = await ask(openai, "Make a question", { response_format: rf });
    assert.equal(again.choices[0]!.message.content, r.choices[0]!.message.content);
  });

  test("stream: true yields the same text as a non-streamed answer, plus usage", async () => {
    const stream = await openai.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "Stream me something" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    const plain = await ask(openai, "Stream me something");
    assert.equal(text, plain.choices[0]!.message.content);
    assert.equal(finish, "stop");
    assert.equal(usage?.completion_tokens, plain.usage!.completion_tokens);
  });

  test("injected 429 surfaces as RateLimitError with retry-after headers", async () => {
    server.inject({ kind: "status", status: 429, retryAfter: 7, retryAfterMs: 6500, times: 1 });
    const err = await rejection(() => ask(openai, "hello"));
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    assert.equal(err.status, 429);
    assert.equal(err.headers?.get("retry-after"), "7");
    assert.equal(err.headers?.get("retry-after-ms"), "6500");
    assert.equal((err.error as any)?.code, "rate_limit_exceeded");
    assert.equal(server.stats().refused429, 1);
    // times: 1 -> the next request is answered.
    await ask(openai, "hello");
    assert.deepEqual(
      server.requests.map((r) => r.status),
      [429, 200],
    );
  });

  test("500 rule with times: 2 fails twice, then succeeds", async () => {
    server.inject({ kind: "status", status: 500, times: 2 });
    for (let i = 0; i < 2; i++) {
      const err = await rejection(() => ask(openai, "retry me"));
      assert.ok(err instanceof OpenAI.InternalServerError, String(err));
      assert.equal(err.status, 500);
    }
    const ok = await ask(openai, "retry me");
    assert.match(ok.choices[0]!.message.content!, /^TEST ANSWER/);
    assert.deepEqual(server.stats(), { requests: 3, answered: 1, refused429: 0, faulted: 2, maxInFlight: 1, inFlight: 0 });
  });

  test("the SDK's own retries get through a transient fault (retry-after-ms honoured)", async () => {
    server.inject({ kind: "status", status: 503, times: 2, retryAfterMs: 10 });
    const retrying = client(server, { maxRetries: 3 });
    const started = performance.now();
    const ok = await ask(retrying, "retry me");
    assert.match(ok.choices[0]!.message.content!, /^TEST ANSWER/);
    assert.equal(server.requests.length, 3);
    // Without the header the SDK would back off ~0.4-1.5 s.
    assert.ok(performance.now() - started < 400, "retry-after-ms not honoured");
  });

  test("reset destroys the connection -> APIConnectionError; the server stays healthy", async () => {
    server.inject({ kind: "reset", times: 1 });
    const err = await rejection(() => ask(openai, "reset me"));
    assert.ok(err instanceof OpenAI.APIConnectionError, String(err));
    assert.ok(!(err instanceof OpenAI.APIConnectionTimeoutError), "a reset is not a timeout");
    await ask(openai, "reset me");
    assert.deepEqual(
      server.requests.map((r) => r.status),
      [0, 200],
    );
  });

  test("malformed body -> the SDK call fails", async () => {
    server.inject({ kind: "malformed", times: 1 });
    const raw = await postJson(`${server.baseURL}/chat/completions`, { model: MODEL, messages: [{ role: "user", content: "x" }] });
    assert.equal(raw.status, 200);
    assert.match(raw.headers.get("content-type") ?? "", /application\/json/);
    const text = await raw.text();
    assert.throws(() => JSON.parse(text));

    server.inject({ kind: "malformed", times: 1 });
    await rejection(() => ask(openai, "x"));
    // Also in JSON mode the rule wins over the JSON answer.
    server.inject({ kind: "malformed", times: 1 });
    await rejection(() => ask(openai, "x", { response_format: { type: "json_object" } }));
  });

  test("malformed_content: a valid completion whose JSON content is truncated", async () => {
    server.inject({ kind: "malformed_content", times: 1 });
    const r = await ask(openai, "json please", { response_format: { type: "json_object" } });
    assert.throws(() => JSON.parse(r.choices[0]!.message.content!));
    const good = await ask(openai, "json please", { response_format: { type: "json_object" } });
    assert.doesNotThrow(() => JSON.parse(good.choices[0]!.message.content!));
  });

  test("hang + client timeout -> APIConnectionTimeoutError", async () => {
    server.inject({ kind: "hang", times: 1 });
    const started = performance.now();
    const err = await rejection(() => ask(openai, "hang", {}, { timeout: 300 }));
    const elapsed = performance.now() - started;
    assert.ok(err instanceof OpenAI.APIConnectionTimeoutError, String(err));
    assert.ok(elapsed >= 290 && elapsed < 2000, `elapsed ${elapsed}`);
    assert.equal(server.requests[0]!.status, 0);
    // The client abort closes the socket, so the server no longer counts it in flight.
    await eventually(() => server.stats().inFlight === 0);
  });

  test("match only affects matching prompts", async () => {
    server.inject({ kind: "status", status: 400, match: "POISON" });
    const err = await rejection(() => ask(openai, "this prompt contains POISON inside"));
    assert.ok(err instanceof OpenAI.BadRequestError, String(err));
    const ok = await ask(openai, "a perfectly fine prompt");
    assert.match(ok.choices[0]!.message.content!, /^TEST ANSWER/);
    // No `times`: applies forever.
    await rejection(() => ask(openai, "POISON again"));
    // match also looks at system messages (all message contents).
    await rejection(() =>
      openai.chat.completions.create({
        model: MODEL,
        messages: [
          { role: "system", content: "POISON" },
          { role: "user", content: "hi" },
        ],
      }),
    );
    assert.equal(server.stats().faulted, 3);
    server.clearFaults();
    await ask(openai, "POISON cleared");
  });

  test("rules apply in insertion order, falling through once exhausted", async () => {
    server.inject({ kind: "status", status: 500, times: 1 });
    server.inject({ kind: "status", status: 408, times: 1 });
    const e1 = await rejection(() => ask(openai, "x"));
    const e2 = await rejection(() => ask(openai, "x"));
    assert.equal((e1 as InstanceType<typeof OpenAI.APIError>).status, 500);
    assert.equal((e2 as InstanceType<typeof OpenAI.APIError>).status, 408);
    await ask(openai, "x");
  });

  test("latency is applied and adjustable", async () => {
    server.setLatency(200);
    let t = performance.now();
    await ask(openai, "slow");
    assert.ok(performance.now() - t >= 199, "latency not applied");
    server.setLatency(0);
    t = performance.now();
    await ask(openai, "fast");
    assert.ok(performance.now() - t < 150, "latency not removed");
  });

  test("maxInFlight counts concurrency", async () => {
    server.setLatency(150);
    await Promise.all(Array.from({ length: 10 }, (_, i) => ask(openai, `concurrent ${i}`)));
    assert.equal(server.stats().maxInFlight, 10);
    await eventually(() => server.stats().inFlight === 0);
    server.reset();
    for (let i = 0; i < 3; i++) await ask(openai, `sequential ${i}`);
    assert.equal(server.stats().maxInFlight, 1);
  });

  test("invalid requests get OpenAI-style 400s", async () => {
    const noMessages = await postJson(`${server.baseURL}/chat/completions`, { model: MODEL });
    assert.equal(noMessages.status, 400);
    assert.equal(((await noMessages.json()) as any).error.type, "invalid_request_error");
    const badJson = await fetch(`${server.baseURL}/chat/completions`, { method: "POST", body: "{nope" });
    assert.equal(badJson.status, 400);
    await badJson.body?.cancel();
    assert.equal(server.requests.length, 2);
  });

  test("control endpoints, models and 404", async () => {
    const injected = await postJson(`${server.url}/__control/faults`, { kind: "status", status: 503, times: 1 });
    assert.equal(injected.status, 200);
    await injected.body?.cancel();
    const err = await rejection(() => ask(openai, "ctl"));
    assert.ok(err instanceof OpenAI.InternalServerError, String(err));
    assert.equal(err.status, 503);
    await ask(openai, "ctl");

    const stats = (await (await fetch(`${server.url}/__control/stats`)).json()) as any;
    assert.equal(stats.requests, 2);
    assert.equal(stats.answered, 1);
    assert.equal(stats.faulted, 1);

    const lat = await postJson(`${server.url}/__control/latency`, { ms: 120 });
    assert.equal(lat.status, 200);
    await lat.body?.cancel();
    const t = performance.now();
    await ask(openai, "ctl slow");
    assert.ok(performance.now() - t >= 119, "latency set via control endpoint not applied");

    const recorded = (await (await fetch(`${server.url}/__control/requests?since=1`)).json()) as any;
    assert.equal(recorded.total, 3);
    assert.deepEqual(
      recorded.requests.map((r: any) => r.body.messages[0].content),
      ["ctl", "ctl slow"],
    );

    const bad = await postJson(`${server.url}/__control/faults`, { kind: "explode" });
    assert.equal(bad.status, 400);
    await bad.body?.cancel();

    const reset = await postJson(`${server.url}/__control/reset`, {});
    assert.equal(reset.status, 200);
    await reset.body?.cancel();
    assert.equal(server.stats().requests, 0);
    assert.equal(server.requests.length, 0);

    const models = await openai.models.list();
    assert.ok(
      models.data.some((m) => m.id === MODEL),
      "model list",
    );

    const missing = await fetch(`${server.url}/nope`);
    assert.equal(missing.status, 404);
    assert.match(((await missing.json()) as any).error.message, /Unknown route/);
  });
});

describe("test server: rpm enforcement", () => {
  let server: TestServer | undefined;
  afterEach(() => server?.close());

  test("the (rpm+1)th request within the window is refused with retry-after", async () => {
    server = await startTestServer({ rpm: 3 });
    const openai = client(server);
    for (let i = 0; i < 3; i++) {
      const { response } = await ask(openai, `req ${i}`).withResponse();
      assert.equal(response.headers.get("x-ratelimit-remaining-requests"), String(2 - i));
    }
    const err = await rejection(() => ask(openai, "one too many"));
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    const retryAfter = Number(err.headers?.get("retry-after"));
    assert.ok(retryAfter >= 1 && retryAfter <= 60, `retry-after ${retryAfter}`);
    assert.ok(Number(err.headers?.get("retry-after-ms")) > 0, "retry-after-ms");
    assert.equal(err.headers?.get("x-ratelimit-remaining-requests"), "0");
    assert.ok(err.headers?.get("x-ratelimit-reset-requests"), "x-ratelimit-reset-requests");
    assert.deepEqual({ answered: server.stats().answered, refused429: server.stats().refused429 }, { answered: 3, refused429: 1 });
  });

  test("the window slides: requests are accepted again once a slot frees", async () => {
    server = await startTestServer({ rpm: 2, rpmWindowMs: 300 });
    const openai = client(server);
    await ask(openai, "a");
    await ask(openai, "b");
    const err = await rejection(() => ask(openai, "c"));
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    const waitMs = Number(err.headers?.get("retry-after-ms"));
    assert.ok(waitMs > 0 && waitMs <= 300, `retry-after-ms ${waitMs}`);
    await new Promise((r) => setTimeout(r, waitMs + 20));
    await ask(openai, "c");
    assert.equal(server.stats().refused429, 1);
  });
});

describe("test server: limits as gateways enforce them", () => {
  let server: TestServer | undefined;
  afterEach(() => server?.close());

  test("an rpm enforced per second allows its share of each second and states the per-minute limit", async () => {
    server = await startTestServer({ rpm: 180, enforceOverMs: 1000 }); // 3 a second
    const openai = client(server);
    for (let i = 0; i < 3; i++) {
      const { response } = await ask(openai, `req ${i}`).withResponse();
      assert.equal(response.headers.get("x-ratelimit-limit-requests"), "180");
      assert.equal(response.headers.get("x-ratelimit-remaining-requests"), String(179 - i));
    }
    const err = await rejection(() => ask(openai, "fourth in one second"));
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    assert.match(err.message, /enforced as 3 per 1s/);
    const waitMs = Number(err.headers?.get("retry-after-ms"));
    assert.ok(waitMs > 0 && waitMs <= 1000, `retry-after-ms ${waitMs}`);
    assert.equal(err.headers?.get("x-ratelimit-remaining-requests"), "0");
  });

  test("refusals without retry-after, or with whole seconds only", async () => {
    server = await startTestServer({ rpm: 1, retryAfter: false });
    await ask(client(server), "a");
    const bare = await rejection(() => ask(client(server!), "b"));
    assert.ok(bare instanceof OpenAI.RateLimitError, String(bare));
    assert.equal(bare.headers?.get("retry-after"), null);
    assert.equal(bare.headers?.get("x-ratelimit-limit-requests"), "1");
    await server.close();
    server = await startTestServer({ rpm: 1, retryAfter: "seconds" });
    await ask(client(server), "a");
    const seconds = await rejection(() => ask(client(server!), "b"));
    assert.ok(seconds instanceof OpenAI.RateLimitError, String(seconds));
    assert.equal(seconds.headers?.get("retry-after-ms"), null);
    assert.ok(Number(seconds.headers?.get("retry-after")) >= 1, "retry-after in seconds");
  });

  test("tpm counts prompt plus max_tokens, states the token headers and refuses beyond them", async () => {
    server = await startTestServer({ tpm: 100 });
    const openai = client(server);
    const { response } = await ask(openai, "x".repeat(40), { max_tokens: 50 }).withResponse(); // 10 + 50 tokens
    assert.equal(response.headers.get("x-ratelimit-limit-tokens"), "100");
    assert.equal(response.headers.get("x-ratelimit-remaining-tokens"), "40");
    assert.ok(response.headers.get("x-ratelimit-reset-tokens"), "x-ratelimit-reset-tokens");
    const err = await rejection(() => ask(openai, "y".repeat(40), { max_tokens: 50 }));
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    assert.match(err.message, /tokens/);
    assert.equal(err.headers?.get("x-ratelimit-remaining-tokens"), "0");
  });

  test("more than K in flight is refused at once, with no retry-after; a slot frees when an answer closes", async () => {
    server = await startTestServer({ maxInFlight: 2, latencyMs: 200 });
    const openai = client(server);
    const held = [ask(openai, "one"), ask(openai, "two")];
    await eventually(() => server!.stats().inFlight === 2);
    const err = await rejection(() => ask(openai, "three"));
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
    assert.match(err.message, /Too many concurrent requests/);
    assert.equal(err.headers?.get("retry-after"), null);
    await Promise.all(held);
    await ask(openai, "three, later");
    assert.deepEqual({ answered: server.stats().answered, refused429: server.stats().refused429 }, { answered: 3, refused429: 1 });
  });

  test("one limit for every client: two clients share it", async () => {
    server = await startTestServer({ rpm: 2 });
    await ask(client(server), "from the first client");
    await ask(client(server, { apiKey: "another-key" }), "from the second client");
    const err = await rejection(() => ask(client(server!), "third"));
    assert.ok(err instanceof OpenAI.RateLimitError, String(err));
  });
});

describe("test server: options and lifecycle", () => {
  test("apiKey enforcement -> 401 AuthenticationError", async () => {
    const server = await startTestServer({ apiKey: "sekrit" });
    try {
      const err = await rejection(() => ask(client(server), "hi"));
      assert.ok(err instanceof OpenAI.AuthenticationError, String(err));
      assert.equal(err.status, 401);
      const ok = await ask(client(server, { apiKey: "sekrit" }), "hi");
      assert.match(ok.choices[0]!.message.content!, /^TEST ANSWER/);
      assert.deepEqual(
        server.requests.map((r) => r.status),
        [401, 200],
      );
    } finally {
      await server.close();
    }
  });

  test("latencyMs option and answerWords option", async () => {
    const server = await startTestServer({ latencyMs: 250, answerWords: 10 });
    try {
      const t = performance.now();
      const r = await ask(client(server), "timed");
      assert.ok(performance.now() - t >= 249, "latencyMs option not applied");
      assert.equal(words(r.choices[0]!.message.content!), 13);
      assert.equal(r.choices[0]!.message.content, answerFor(server.requests[0]!.body, 10).text);
    } finally {
      await server.close();
    }
  });

  test("close() releases hung requests promptly", async () => {
    const server = await startTestServer();
    server.inject({ kind: "hang" });
    const pending = ask(client(server), "hang forever").then(
      () => "resolved",
      (err: unknown) => err,
    );
    try {
      await eventually(() => server.stats().inFlight === 1);
      const t = performance.now();
      await server.close();
      assert.ok(performance.now() - t < 1000, "close() was slow");
      const outcome = await pending;
      assert.ok(outcome instanceof OpenAI.APIConnectionError, String(outcome));
    } finally {
      await server.close(); // idempotent; makes sure a failed assertion doesn't leave it listening
    }
  });

  test("main.ts runner prints its URL, serves, and exits on SIGTERM", async () => {
    const root = fileURLToPath(new URL("../..", import.meta.url));
    const child = spawn(process.execPath, ["--import", "tsx", "test/server/main.ts", "--port", "0", "--latency", "20", "--answer-words", "5"], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    try {
      const lines = createInterface({ input: child.stdout! });
      const [line] = (await once(lines, "line")) as [string];
      const info = JSON.parse(line);
      assert.match(info.url, /^http:\/\/127\.0\.0\.1:\d+$/);
      assert.equal(info.baseURL, `${info.url}/v1`);
      const openai = new OpenAI({ apiKey: "k", baseURL: info.baseURL, maxRetries: 0, timeout: 5000 });
      const r = await openai.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "remote" }] });
      assert.equal(words(r.choices[0]!.message.content!), 8);
      const stats = (await (await fetch(`${info.url}/__control/stats`)).json()) as any;
      assert.equal(stats.answered, 1);
      assert.equal(stats.latencyMs, 20);
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      assert.equal(code, 0);
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
