import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { connectFailure, endpointProblem } from "../../src/providers/classify.js";
import { readAnswer } from "../../src/providers/openai.js";
import { RequestError } from "../../src/providers/types.js";

const req = (content = "Write a story about a lighthouse keeper and her dog.") => ({ model: "gpt-4o-mini", messages: [{ content }] });

describe("which HTTP errors concern the whole endpoint", () => {
  const cases: [string, number, Record<string, unknown>, string | undefined][] = [
    ["401: the key", 401, { message: "Incorrect API key provided: sk-***", code: "invalid_api_key" }, "auth"],
    ["403: the project", 403, { message: "Project does not have access" }, "forbidden"],
    ["402: no credit (OpenRouter)", 402, { message: "Insufficient credits" }, "quota"],
    [
      "429 insufficient_quota: waiting does not help",
      429,
      { message: "You exceeded your current quota", type: "insufficient_quota", code: "insufficient_quota" },
      "quota",
    ],
    ["429 rate limit: only this request, retried", 429, { message: "Rate limit reached", code: "rate_limit_exceeded" }, undefined],
    [
      "404 model_not_found (OpenAI)",
      404,
      { message: "The model `gpt-4o-mini` does not exist or you do not have access to it.", code: "model_not_found" },
      "model",
    ],
    ["404 model not found (Ollama)", 404, { message: 'model "gpt-4o-mini" not found, try pulling it first' }, "model"],
    ["404 for the path (Go's mux)", 404, { message: "404 page not found" }, "path"],
    ["404 for the path (FastAPI)", 404, { message: "Not Found" }, "path"],
    ["405 on the path (a web UI)", 405, { message: "Method Not Allowed" }, "path"],
    [
      "400 naming response_format in param",
      400,
      { message: "Invalid schema for response_format 'answer'", param: "response_format", code: "invalid_json_schema" },
      "schema",
    ],
    [
      "400 about json_schema support, which also says 'model'",
      400,
      { message: "Invalid parameter: 'response_format' of type 'json_schema' is not supported with this model." },
      "schema",
    ],
    ["400 json_schema in the message only (no param)", 400, { message: "json_schema is not supported by this server" }, "schema"],
    ["400 with model_not_found code", 400, { message: "invalid model ID", code: "model_not_found" }, "model"],
    ["400 about this prompt's length", 400, { message: "This model's maximum context length is 128000 tokens.", code: "context_length_exceeded" }, undefined],
    ["400 about this sample's content", 400, { message: "Invalid 'messages[0].content': string too long.", param: "messages" }, undefined],
    ["422 validation of this request (vLLM)", 422, { message: "temperature must be non-negative" }, undefined],
    ["500: a server error, retried", 500, { message: "The server had an error" }, undefined],
  ];
  for (const [label, status, body, expected] of cases) {
    test(label, () => assert.equal(endpointProblem(status, body, req()), expected));
  }

  test("a 400 whose message quotes the sample's own words about json_schema concerns that sample", () => {
    const r = req("Explain what json_schema means in one paragraph.");
    assert.equal(endpointProblem(400, { message: "Your prompt 'Explain what json_schema means…' was flagged" }, r), undefined);
  });
});

describe("what prevented a connection", () => {
  const err = (code: string, message = code) => Object.assign(new Error(message), { code });
  test("refused, DNS, unreachable, TLS: each in a few words", () => {
    assert.equal(connectFailure(err("ECONNREFUSED")), "connection refused");
    assert.equal(connectFailure(err("ENOTFOUND")), "no such host (DNS lookup failed)");
    assert.equal(connectFailure(err("EAI_AGAIN")), "DNS lookup failed (EAI_AGAIN)");
    assert.equal(connectFailure(err("EHOSTUNREACH")), "host unreachable");
    assert.equal(connectFailure(err("DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate")), "TLS failed: self-signed certificate");
    assert.equal(connectFailure(err("ERR_SSL_WRONG_VERSION_NUMBER", "wrong version number")), "TLS failed: wrong version number");
  });
  test("found through causes (undici's 'fetch failed', a proxy's wrapper) and AggregateError (both address families)", () => {
    assert.equal(connectFailure(new TypeError("fetch failed", { cause: err("ECONNREFUSED") })), "connection refused");
    assert.equal(connectFailure(new Error("x (via proxy p)", { cause: err("ENOTFOUND") })), "no such host (DNS lookup failed)");
    assert.equal(connectFailure(new AggregateError([err("ECONNREFUSED"), err("ECONNREFUSED")], "")), "connection refused");
  });
  test("a connection that was made and then broke is not 'cannot reach'", () => {
    assert.equal(connectFailure(err("ECONNRESET")), undefined);
    assert.equal(connectFailure(new Error("socket hang up")), undefined);
    assert.equal(connectFailure(undefined), undefined);
  });
});

describe("a 200 response as an answer", () => {
  const completion = (message: Record<string, unknown>, finish = "stop") => ({
    model: "m-2024",
    choices: [{ index: 0, message: { role: "assistant", ...message }, finish_reason: finish }],
    usage: { prompt_tokens: 3, completion_tokens: 2 },
  });
  const fails = (data: unknown, contentType: string | null, message: RegExp, retryable: boolean) =>
    assert.throws(
      () => readAnswer(data, contentType),
      (e: unknown) => e instanceof RequestError && message.test(e.message) && e.retryable === retryable,
    );

  test("text, with usage and model", () => {
    assert.deepEqual(readAnswer(completion({ content: "hi" }), "application/json"), {
      text: "hi",
      finishReason: "stop",
      usage: { input: 3, output: 2 },
      model: "m-2024",
      fingerprint: undefined,
    });
  });
  test("a refusal is an answer: its text, finish reason 'refusal'", () => {
    const a = readAnswer(completion({ content: null, refusal: "I can't help with that." }), "application/json");
    assert.equal(a.text, "I can't help with that.");
    assert.equal(a.finishReason, "refusal");
  });
  test("content_filter is an answer, whatever the content", () => {
    assert.equal(readAnswer(completion({ content: null }, "content_filter"), null).finishReason, "content_filter");
    assert.equal(readAnswer(completion({ content: null }, "content_filter"), null).text, "");
  });
  test("what is not a chat completion fails the request, saying what it was", () => {
    fails(
      "<html><head><title>Portal</title></head></html>",
      "text/html",
      /^the endpoint answered HTTP 200 with text\/html, not a chat completion: Portal$/,
      false,
    );
    fails({ choices: [] }, "application/json", /no choices \(choices: \[\]\)/, true);
    fails({ error: { message: "upstream failed" } }, "application/json", /^the endpoint answered HTTP 200 with an error: upstream failed$/, true);
    fails(completion({ content: null }), "application/json", /^malformed answer: message\.content null \(finish_reason stop\)$/, true);
    fails(completion({ content: null, tool_calls: [{}] }, "tool_calls"), "application/json", /tool calls instead of text/, true);
    fails([1, 2], "application/json", /not a chat completion/, true);
  });
});
