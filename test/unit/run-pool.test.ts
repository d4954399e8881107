import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { pathToFileURL } from "node:url";
// The compiled pool: its worker's entry point is a .js file beside it (see manifest/module-thread.ts).
import { RunPool } from "../../lib/execute/run-pool.js";
import type { RunStep } from "../../src/manifest/types.js";
import { TempProject } from "../helpers/project.js";

let p: TempProject;
before(async () => {
  p = await TempProject.create({
    "upper.mjs": `export default (v) => v.what === "drop" ? { drop: "asked to" } : String(v.what).toUpperCase() + v.n;\n`,
    "bad.mjs": [
      `export default (v) => {`,
      `  if (v.what === "throw") throw new Error("boom");`,
      `  if (v.what === "exit") process.exit(4);`,
      `  if (v.what === "object") return { text: 1 };`,
      `  if (v.what === "loop") for (;;);`,
      // An uncaught error after the call has handed back nothing: the thread dies with the call running.
      `  if (v.what === "crash") return new Promise(() => setTimeout(() => { throw new Error("late"); }, 1));`,
      `  return v.what;`,
      `};`,
    ].join("\n"),
  });
});
after(() => p.remove());

const step = (file: string, timeoutS = 30): RunStep => ({
  kind: "run",
  id: "s",
  index: 0,
  defHash: "",
  parts: {},
  module: file,
  url: pathToFileURL(join(p.dir, file)).href,
  timeoutS,
});

test("calls are answered with their own sample's result, however many are in flight", { timeout: 10_000 }, async () => {
  const pool = new RunPool({ size: 2 });
  try {
    const results = await Promise.all(Array.from({ length: 200 }, (_, n) => pool.run(step("upper.mjs"), { what: n % 7 === 0 ? "drop" : "x", n })));
    for (const [n, r] of results.entries()) assert.deepEqual(r, n % 7 === 0 ? { drop: "asked to" } : { text: `X${n}` });
  } finally {
    await pool.close();
  }
});

test("what a misbehaving call means for its sample; the calls queued behind it still run", { timeout: 10_000 }, async () => {
  const pool = new RunPool({ size: 1 });
  try {
    const whats = ["throw", "ok1", "exit", "ok2", "object", "crash", "ok3"];
    const results = await Promise.all(whats.map((what) => pool.run(step("bad.mjs"), { what })));
    assert.deepEqual(results, [
      { failed: "bad.mjs threw: boom" },
      { text: "ok1" },
      { failed: 'bad.mjs called process.exit(4); a run module returns its text, or { drop: "why" }, and cannot end the build' },
      { text: "ok2" },
      { failed: 'bad.mjs returned {"text":1}; expected text or { drop: "reason" }' },
      { failed: "bad.mjs crashed its worker thread: late" },
      { text: "ok3" },
    ]);
  } finally {
    await pool.close();
  }
});

test("a call past its timeout fails and its thread is replaced; the calls behind it go on", { timeout: 10_000 }, async (t) => {
  t.mock.timers.enable({ apis: ["setTimeout"] });
  const pool = new RunPool({ size: 1 });
  try {
    const looping = pool.run(step("bad.mjs", 2), { what: "loop" });
    const behind = pool.run(step("bad.mjs", 2), { what: "after" });
    // The call's clock starts once its thread runs (a real event): tick until the timeout fires.
    let settled = false;
    void looping.then(() => (settled = true));
    while (!settled) {
      t.mock.timers.tick(2000);
      await new Promise((r) => setImmediate(r));
    }
    assert.deepEqual(await looping, { failed: "bad.mjs did not return within 2 s (run.timeout_s); its thread was replaced" });
    assert.deepEqual(await behind, { text: "after" });
  } finally {
    await pool.close();
  }
});

test("an abort interrupts the call running and the ones waiting, and every later one", { timeout: 10_000 }, async () => {
  const controller = new AbortController();
  const pool = new RunPool({ size: 1, signal: controller.signal });
  const calls = [pool.run(step("bad.mjs"), { what: "loop" }), pool.run(step("bad.mjs"), { what: "x" })];
  controller.abort();
  assert.deepEqual(await Promise.all(calls), [{ interrupted: true }, { interrupted: true }]);
  assert.deepEqual(await pool.run(step("upper.mjs"), { what: "x", n: 1 }), { interrupted: true });
});
