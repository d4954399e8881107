import { createReadStream } from "node:fs";
import { readdir, readFile, rm, rmdir, stat } from "node:fs/promises";
import { dirname, join, sep } from "node:path";
import type { Lock } from "../lock/lockfile.js";
import { outputTargets } from "../manifest/output-targets.js";
import type { Manifest } from "../manifest/types.js";
import { createHash128 } from "../util/hash.js";
import { filesDigest, outputDef } from "./emit.js";

/** Hash an output on disk as emit() hashed it: a JSONL file's bytes, or a files folder's (name, prompt, completion) triples. */
export async function hashOnDisk(abs: string, format: string): Promise<{ hash: string; rows: number } | undefined> {
  try {
    if (format !== "files") {
      // Streamed: a large dataset is never held in memory as one string.
      const hasher = createHash128();
      let rows = 0;
      for await (const chunk of createReadStream(abs, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
        hasher.update(chunk);
        for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) rows++;
      }
      return { hash: hasher.digest(), rows };
    }
    const names = (await readdir(join(abs, "prompts"))).filter((f) => f.endsWith(".txt"));
    const files: [string, string, string][] = [];
    for (const f of names)
      files.push([
        f.slice(0, -4),
        await readFile(join(abs, "prompts", f), "utf8"),
        await readFile(join(abs, "completions", f), "utf8").catch(() => "\0missing"),
      ]);
    const extra = (await readdir(join(abs, "completions"))).filter((f) => f.endsWith(".txt") && !names.includes(f));
    if (extra.length) files.push(["\0extra", extra.join(","), ""]);
    return { hash: filesDigest(files), rows: files.length };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Every output the manifest defines is in the lock with the same definition, and on disk as the lock says; else which is not. */
export async function outputsDiffer(m: Manifest, lock: Lock): Promise<string | undefined> {
  const byPath = new Map(lock.outputs.map((o) => [o.path, o]));
  let count = 0;
  for (const out of m.outputs) {
    const def = outputDef(m, out);
    for (const t of outputTargets(out)) {
      count++;
      const locked = byPath.get(t.path);
      if (!locked) return `${t.path} is not in the lock`;
      if (locked.def !== def) return `the definition of ${t.path} changed`;
      const disk = await hashOnDisk(t.abs, out.format);
      if (!disk) return `${t.path} is missing`;
      if (disk.hash !== locked.hash) return `${t.path} differs from the lock`;
    }
  }
  return count === lock.outputs.length ? undefined : "the lock names outputs the manifest no longer writes";
}

/**
 * Outputs the previous build wrote that the manifest no longer names (a renamed output, a split
 * removed): delete each one still exactly as that build left it, so dist/ holds the dataset and
 * nothing else. A file someone changed since is left alone.
 */
export async function removeStaleOutputs(m: Manifest, previous: Lock, current: { path: string }[]): Promise<string[]> {
  const now = new Set(current.map((o) => o.path));
  const removed: string[] = [];
  for (const old of previous.outputs) {
    if (now.has(old.path)) continue;
    const abs = join(m.dir, old.path);
    // The lock does not say which format wrote a path: a folder is a `files` output's.
    const folder = (await stat(abs).catch(() => undefined))?.isDirectory() ?? false;
    const disk = await hashOnDisk(abs, folder ? "files" : "jsonl").catch(() => undefined);
    if (disk?.hash !== old.hash) continue;
    if (folder) await removeFilesOutput(m.dir, abs);
    else await rm(abs, { force: true });
    removed.push(old.path);
  }
  return removed;
}

/**
 * A `files` output whose folders hold exactly what the lock says: its .txt files, then each
 * folder left empty (rmdir never removes a folder with anything of the user's in it), up to but
 * never including the project folder.
 */
async function removeFilesOutput(root: string, abs: string): Promise<void> {
  for (const sub of ["prompts", "completions"]) {
    const folder = join(abs, sub);
    for (const f of await readdir(folder)) if (f.endsWith(".txt")) await rm(join(folder, f), { force: true });
    await rmdir(folder).catch(() => {});
  }
  for (let dir = abs; dir !== root && dir.startsWith(root + sep); dir = dirname(dir))
    if (
      !(await rmdir(dir).then(
        () => true,
        () => false,
      ))
    )
      break;
}
