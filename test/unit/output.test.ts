import assert from "node:assert/strict";
import { before, test } from "node:test";
import { splitPath } from "../../src/manifest/output-targets.js";
import { safeName, uniqueNames } from "../../src/output/file-names.js";
import { splitOf } from "../../src/output/split.js";
import { hash64, initHashing } from "../../src/util/hash.js";

before(initHashing);

test("splits: deterministic, close to the fractions, stable as the set grows", () => {
  const fractions = [
    ["train", 0.9],
    ["validation", 0.1],
  ] as const;
  const combos = Array.from({ length: 2000 }, (_, i) => hash64(`c${i}`));
  const first = combos.map((c) => splitOf(42, c, fractions));
  const validation = first.filter((s) => s === "validation").length;
  assert.ok(validation > 150 && validation < 250, `validation got ${validation} of 2000`);
  // Growing the set: the old combinations keep their split.
  const grown = [...combos, ...Array.from({ length: 500 }, (_, i) => hash64(`new${i}`))];
  assert.deepEqual(
    grown.slice(0, 2000).map((c) => splitOf(42, c, fractions)),
    first,
  );
  // The seed is a real input.
  assert.notDeepEqual(
    combos.map((c) => splitOf(43, c, fractions)),
    first,
  );
});

test("split file names insert the split before the extension", () => {
  assert.equal(splitPath("dist/x.jsonl", "train"), "dist/x.train.jsonl");
  assert.equal(splitPath("dist/data", "validation"), "dist/data.validation");
  assert.equal(splitPath("dist.d/data", "train"), "dist.d/data.train");
});

test("safe file names never escape the folder and never collide", () => {
  assert.equal(safeName("../../etc/passwd"), "etc-passwd");
  assert.equal(safeName("science fiction_Paris_the 1990s"), "science-fiction_Paris_the-1990s");
  assert.equal(safeName("Café à Kyōto"), "Cafe-a-Kyoto");
  assert.equal(safeName("..."), "sample");
  assert.equal(safeName("/"), "sample");
  assert.ok(safeName("x".repeat(500)).length <= 100);
  const names = uniqueNames([
    { id: "aaa", raw: "a/b" },
    { id: "bbb", raw: "a b" },
    { id: "ccc", raw: "other" },
    { id: "ddd", raw: "A B" },
  ]);
  assert.equal(names.get("ccc"), "other");
  const colliding = ["aaa", "bbb", "ddd"].map((id) => names.get(id)!);
  assert.equal(new Set(colliding.map((n) => n.toLowerCase())).size, 3);
  for (const n of names.values()) assert.match(n, /^[A-Za-z0-9._-]+$/);
});

test("no row its consumer rejects: openai-chat without user or assistant content, prompt-completion without a completion", async () => {
  const { rejectedBy } = await import("../../src/output/rows.js");
  const chat = { format: "openai-chat" } as Parameters<typeof rejectedBy>[0];
  const messages = (assistant: string, user = "q") => ({
    messages: [
      { role: "user", content: user },
      { role: "assistant", content: assistant },
    ],
  });
  assert.equal(rejectedBy(chat, messages("an answer")), undefined);
  assert.match(rejectedBy(chat, messages(""))!, /assistant message would be empty/);
  assert.match(rejectedBy(chat, messages(" \n\t"))!, /assistant message would be empty/);
  assert.match(rejectedBy(chat, messages("a", ""))!, /user message would be empty/);
  const pc = { format: "prompt-completion" } as Parameters<typeof rejectedBy>[0];
  assert.equal(rejectedBy(pc, { prompt: "", completion: "x" }), undefined);
  assert.match(rejectedBy(pc, { prompt: "p", completion: "" })!, /completion would be empty/);
  assert.equal(rejectedBy({ format: "jsonl" } as Parameters<typeof rejectedBy>[0], { a: "" }), undefined);
});
