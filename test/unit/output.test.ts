import assert from "node:assert/strict";
import { before, test } from "node:test";
import { splitPath } from "../../src/manifest/output-targets.js";
import { safeName, uniqueNames } from "../../src/output/file-names.js";
import { assignSplits, bands, splitOf } from "../../src/output/split.js";
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

const counts = (splits: Map<string, string>, names: readonly string[]) => names.map((n) => [...splits.values()].filter((s) => s === n).length);

test("assigned splits are never empty once there are as many units as splits, and exact while small", () => {
  const two = [
    ["train", 0.9],
    ["validation", 0.1],
  ] as const;
  const three = [
    ["train", 0.8],
    ["validation", 0.1],
    ["test", 0.1],
  ] as const;
  let naturalEmpty = 0;
  for (let seed = 0; seed < 200; seed++) {
    for (const n of [2, 3, 5, 10, 20]) {
      const units = Array.from({ length: n }, (_, i) => hash64(`u${i}`));
      if (!units.some((u) => splitOf(seed, u, two) === "validation")) naturalEmpty++;
      const got = counts(assignSplits(seed, units, two).splits, ["train", "validation"]);
      assert.ok(got[1]! >= 1 && got[0]! >= 1, `seed ${seed}, ${n} units: ${got}`);
      // As close to 0.9/0.1 as n allows: 20 → 18/2, 10 → 9/1, 5 → 4 or 5/1.
      if (n === 20) assert.deepEqual(got, [18, 2], `seed ${seed}`);
      if (n === 10) assert.deepEqual(got, [9, 1], `seed ${seed}`);
      const got3 = counts(
        assignSplits(
          seed,
          Array.from({ length: Math.max(3, n) }, (_, i) => hash64(`u${i}`)),
          three,
        ).splits,
        ["train", "validation", "test"],
      );
      assert.ok(
        got3.every((c) => c >= 1),
        `seed ${seed}, ${n} units, three splits: ${got3}`,
      );
      if (n === 10) assert.deepEqual(got3, [8, 1, 1], `seed ${seed}`);
    }
  }
  // What the correction is for: hashing alone leaves validation empty this often.
  assert.ok(naturalEmpty > 100, `${naturalEmpty}`);
  // Fewer units than splits: nothing is invented.
  assert.equal(assignSplits(1, ["a"], three).splits.size, 1);
  assert.equal(assignSplits(1, [], three).splits.size, 0);
});

test("assigned splits: within the band at every size, and only corrected units ever move as the set grows", () => {
  const fractions = [
    ["train", 0.9],
    ["validation", 0.1],
  ] as const;
  const all = Array.from({ length: 3000 }, (_, i) => hash64(`c${i}`));
  let movedTotal = 0;
  let quietGrowths = 0;
  for (let seed = 0; seed < 40; seed++) {
    let prev: ReturnType<typeof assignSplits> | undefined;
    let prevN = 0;
    for (const n of [20, 50, 200, 1000, 3000]) {
      const a = assignSplits(seed, all.slice(0, n), fractions);
      const got = counts(a.splits, ["train", "validation"]);
      for (const [i, b] of bands(n, fractions).entries())
        assert.ok(got[i]! >= b.lo && got[i]! <= b.hi, `seed ${seed}, n ${n}: ${got} outside ${JSON.stringify(b)}`);
      // Each unit is where its hash puts it, except for exactly `corrected` of them.
      const off = all.slice(0, n).filter((u) => a.splits.get(u) !== splitOf(seed, u, fractions)).length;
      assert.equal(off, a.corrected);
      if (prev) {
        const moved = all.slice(0, prevN).filter((u) => prev!.splits.get(u) !== a.splits.get(u)).length;
        assert.ok(moved <= prev.corrected + a.corrected, `seed ${seed}, ${prevN} → ${n}: ${moved} moved`);
        if (prev.corrected + a.corrected === 0) quietGrowths++;
        movedTotal += moved;
      }
      prev = a;
      prevN = n;
    }
  }
  // Most growths move nothing at all; a quota split would move a few units in nearly every one.
  assert.ok(quietGrowths > 80, `${quietGrowths} of 160 growths moved nothing`);
  assert.ok(movedTotal < 200, `${movedTotal} moved`);
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
