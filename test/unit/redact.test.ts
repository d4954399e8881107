import assert from "node:assert/strict";
import { test } from "node:test";
import { displayUrl, redactor, secretsIn } from "../../src/util/redact.js";

test("known values, Authorization-style headers and sk- tokens are masked", () => {
  const r = redactor(["gw-0123456789-secret"]);
  assert.equal(r("Incorrect API key provided: gw-0123456789-secret."), "Incorrect API key provided: ***.");
  assert.equal(r("Incorrect API key provided: sk-proj-abcDEF123456789."), "Incorrect API key provided: sk-***.");
  assert.equal(r("headers: { authorization: 'Bearer abc.def-123456' }"), "headers: { authorization: '***' }");
  assert.equal(r('{"Authorization":"Bearer zzzzzzzzzz","x":1}'), '{"Authorization":"***","x":1}');
  assert.equal(r("api-key: 0123456789abcdef"), "api-key: ***");
  assert.equal(r("sent Bearer tok_1234567890 upstream"), "sent Bearer *** upstream");
});

test("ordinary text is left alone", () => {
  const r = redactor(["x", "short"]);
  for (const text of [
    "a basic approach to risk-averse tasks",
    "the bearer of bad news",
    "HTTP 400: Invalid 'messages[0].content': string too long.",
    "connect ECONNREFUSED 127.0.0.1:8080",
  ])
    assert.equal(r(text), text);
});

test("the environment's secrets: the variables named, and those named like keys", () => {
  const env = { OPENAI_API_KEY: "sk-a-123456", MY_LLM: "llm-secret-1", GITHUB_TOKEN: "ghp_abcdef", HOME: "/home/me", EMPTY_KEY: "" };
  assert.deepEqual(secretsIn(env, ["MY_LLM"]).sort(), ["ghp_abcdef", "llm-secret-1", "sk-a-123456"]);
});

test("a URL is shown without its user and password", () => {
  assert.equal(displayUrl("https://me:pw@gw.example/v1"), "https://gw.example/v1");
  assert.equal(displayUrl("http://127.0.0.1:8080/v1"), "http://127.0.0.1:8080/v1");
});
