import { readdir, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { outputTargets } from "../manifest/output-targets.js";
import type { Manifest } from "../manifest/types.js";
import { cardTarget } from "./card.js";

// The temp files util/fs-atomic.ts writes beside a file before renaming over it.
const TEMP = /\.tmp-\d+-[0-9a-f]{8}$/;

/**
 * Temp files a killed build (kill -9 mid-write) left beside the outputs, the dataset card and the lock. Called with
 * the build lock held, so no other build of this manifest is writing them: whatever pid a temp
 * names, it is a leftover (PID 1 after a container restart may even be this process's own).
 * Returns the paths removed, relative to the manifest's folder.
 */
export async function removeStrayTemps(m: Manifest, lockPath: string): Promise<string[]> {
  const removed: string[] = [];
  const sweep = async (dir: string, owns: (name: string) => boolean) => {
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!TEMP.test(name) || !owns(name.replace(TEMP, ""))) continue;
      await rm(join(dir, name), { force: true });
      removed.push(join(dir, name));
    }
  };
  await sweep(dirname(lockPath), (name) => name === basename(lockPath));
  for (const out of m.outputs)
    for (const t of outputTargets(out)) {
      if (out.format === "files") for (const sub of ["prompts", "completions"]) await sweep(join(t.abs, sub), (name) => name.endsWith(".txt"));
      else await sweep(dirname(t.abs), (name) => name === basename(t.abs));
    }
  const card = cardTarget(m);
  if (card) await sweep(dirname(card.abs), (name) => name === basename(card.abs));
  return removed.map((p) => p.slice(m.dir.length + 1));
}
