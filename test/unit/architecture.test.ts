import assert from "node:assert/strict";
import { readdir, readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { test } from "node:test";
import { REPO } from "../helpers/cli.js";

/** Imports point backwards along manifest → expand → plan → cache → execute → output → freshness → commands. */
const ORDER = ["manifest", "expand", "plan", "cache", "providers", "execute", "output", "freshness", "commands", "cli"];
/** Modules everything may use. */
const LEAVES = ["errors.ts", "events.ts", "util/", "template/", "lock/"];

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await files(p)));
    else if (p.endsWith(".ts")) out.push(p);
  }
  return out;
}

const layer = (rel: string) => ORDER.indexOf(rel.split("/")[0]!);

test("source imports follow the flow of data", async () => {
  const src = join(REPO, "src");
  const problems: string[] = [];
  for (const file of await files(src)) {
    const from = relative(src, file);
    const text = await readFile(file, "utf8");
    for (const m of text.matchAll(/(?:from|import) "(\.[^"]+)"/g)) {
      const to = relative(src, resolve(dirname(file), m[1]!)).replace(/\.js$/, ".ts");
      if (LEAVES.some((l) => to === l || to.startsWith(l))) continue;
      if (from.startsWith("cli/")) {
        if (to !== "index.ts" && !to.startsWith("cli/")) problems.push(`${from} → ${to}: the CLI may only use the public index.ts`);
        continue;
      }
      if (to === "index.ts") problems.push(`${from} → index.ts: only the CLI imports the public API`);
      if (to === "project.ts" && !from.startsWith("commands/") && !from.startsWith("freshness/")) problems.push(`${from} → project.ts`);
      const a = layer(from);
      const b = layer(to);
      if (a >= 0 && b >= 0 && b > a) problems.push(`${from} → ${to}: ${to.split("/")[0]} comes after ${from.split("/")[0]}`);
      if (LEAVES.some((l) => from === l || from.startsWith(l)) && !LEAVES.some((l) => to === l || to.startsWith(l)))
        problems.push(`${from} → ${to}: a leaf module must not depend on a stage`);
    }
  }
  assert.deepEqual(problems, [], problems.join("\n"));
});
