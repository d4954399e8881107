import assert from "node:assert/strict";
import { test } from "node:test";
import { parseLock } from "../../src/lock/lockfile.js";
import type { GenerateStep, ModelConfig, Step } from "../../src/manifest/types.js";
import { batchedSteps, batches, requestsByStep } from "../../src/plan/batch-choice.js";
import { loadPrices, priceOf } from "../../src/plan/prices.js";
import { model } from "../helpers/model.js";

const gen = (id: string, index: number, m: Partial<ModelConfig>) => ({ kind: "generate", id, index, model: model(m) }) as unknown as GenerateStep;
const filter = (id: string, index: number) => ({ kind: "filter", id, index }) as unknown as Step;

test("mode: batch always batches, auto only above batch_above, direct and offline never", () => {
  assert.equal(batches(gen("a", 0, {}), 10 ** 6, false), false);
  assert.equal(batches(gen("a", 0, { mode: "batch" }), 1, false), true);
  assert.equal(batches(gen("a", 0, { mode: "batch" }), 1, true), false, "--offline answers locally");
  assert.equal(batches(gen("a", 0, { mode: "batch", provider: "echo" }), 1, false), false);
  const auto = gen("a", 0, { mode: "auto", batchAbove: 100 });
  assert.equal(batches(auto, 100, false), false);
  assert.equal(batches(auto, 101, false), true);
});

test("requests per step: the step each sample stopped on and every generate step after it, before the segment's end", () => {
  const steps = [gen("a", 0, {}), filter("f", 1), gen("b", 2, {}), gen("c", 3, {})];
  assert.deepEqual(
    [...requestsByStep(steps, [0, 0, 2, 3])],
    [
      ["a", 2],
      ["b", 3],
      ["c", 4],
    ],
  );
  assert.deepEqual(
    [...requestsByStep(steps, [0, 2], 3)],
    [
      ["a", 1],
      ["b", 2],
    ],
  );
  const mixed = [gen("a", 0, { mode: "auto", batchAbove: 2 }), gen("b", 1, { mode: "auto", batchAbove: 2 })];
  assert.deepEqual([...batchedSteps(mixed, requestsByStep(mixed, [0, 0, 1]), false)], ["b"], "a: 2 requests, not above 2; b: 3");
});

test("batch requests are priced at half the list price, and half of model.price", async () => {
  await loadPrices();
  const list = priceOf(model({}), false)!;
  assert.deepEqual(priceOf(model({}), false, true), { inputPerMtok: list.inputPerMtok / 2, outputPerMtok: list.outputPerMtok / 2 });
  assert.deepEqual(priceOf(model({ price: { inputPerMtok: 3, outputPerMtok: 10 } }), false, true), { inputPerMtok: 1.5, outputPerMtok: 5 });
  assert.deepEqual(priceOf(model({ mode: "batch" }), true, true), { inputPerMtok: 0, outputPerMtok: 0 });
});

const header =
  '{"combine":{"mode":"product","repeat":1},"dropped":0,"failed":0,"kept":1,"lockfile":2,"name":"t","pending":0,"samples":1,"seed":1,"steps":{"s":{"def":"d","kind":"generate"}},"versions":{"key":2,"render":1}}';
const sample = (step: string) => `{"id":"0000000000000001","repeat":0,"status":"kept","steps":{"s":${step}},"values":{"v":"x"}}`;

test("the lock records the batch that answered; a lock without it (every older lock) reads as before", () => {
  const withBatch = parseLock(`${header}\n${sample('{"batch":"batch_abc","key":"k","out":"o","r":"r"}')}\n`);
  assert.equal(withBatch.samples[0]!.steps.s!.batch, "batch_abc");
  const older = parseLock(`${header}\n${sample('{"key":"k","out":"o","r":"r"}')}\n`);
  assert.equal(older.samples[0]!.steps.s!.batch, undefined);
  assert.throws(() => parseLock(`${header}\n${sample('{"batch":true,"key":"k","r":"r"}')}\n`), /batch is not text/);
});
