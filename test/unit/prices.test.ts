import assert from "node:assert/strict";
import { test } from "node:test";
import type { ModelConfig } from "../../src/manifest/types.js";
import { costOf, loadPrices, needsPriceBook, priceOf } from "../../src/plan/prices.js";
import { model } from "../helpers/model.js";

test("a list price is not read before the price book is loaded (a bug, with its stack)", () => {
  assert.throws(() => priceOf(model({ name: "gpt-4.1" }), false), /loadPrices\(\) must be awaited/);
});

test("list prices come from the maintained price book", async (t) => {
  await loadPrices();
  await t.test("OpenAI by name, dated snapshots included", () => {
    assert.deepEqual(priceOf(model({}), false), { inputPerMtok: 0.15, outputPerMtok: 0.6 });
    assert.deepEqual(priceOf(model({ name: "gpt-4o-mini-2024-07-18" }), false), { inputPerMtok: 0.15, outputPerMtok: 0.6 });
  });
  await t.test("a gateway the book knows is priced as that provider", () => {
    const p = priceOf(model({ name: "llama-3.1-8b-instant", baseUrl: "https://api.groq.com/openai/v1" }), false);
    assert.ok(p && p.inputPerMtok > 0 && p.outputPerMtok > 0, JSON.stringify(p));
  });
  await t.test("another endpoint: an OpenAI model name at OpenAI's price, anything else unknown (null cost)", () => {
    assert.deepEqual(priceOf(model({ name: "gpt-4o", baseUrl: "http://127.0.0.1:8000/v1" }), false), { inputPerMtok: 2.5, outputPerMtok: 10 });
    const local = priceOf(model({ name: "my-finetune", baseUrl: "http://127.0.0.1:8000/v1" }), false);
    assert.equal(local, undefined);
    assert.equal(costOf(local, 1000, 1000), null);
  });
  await t.test("model.price overrides; offline, echo and ollama cost nothing", () => {
    assert.deepEqual(priceOf(model({ name: "my-finetune", price: { inputPerMtok: 1, outputPerMtok: 2 } }), false), { inputPerMtok: 1, outputPerMtok: 2 });
    for (const m of [model({ provider: "echo" }), model({ provider: "ollama", name: "llama3" })]) assert.equal(costOf(priceOf(m, false), 1e6, 1e6), 0);
    assert.equal(costOf(priceOf(model({ name: "my-finetune" }), true), 1e6, 1e6), 0);
  });
});

test("only runs that price a model with no model.price load the book", () => {
  const gen = (m: Partial<ModelConfig>) => ({ kind: "generate", model: model(m) }) as never;
  assert.equal(needsPriceBook([gen({})], false), true);
  assert.equal(needsPriceBook([gen({})], true), false);
  assert.equal(needsPriceBook([gen({ provider: "echo" }), gen({ price: { inputPerMtok: 1, outputPerMtok: 1 } })], false), false);
});
