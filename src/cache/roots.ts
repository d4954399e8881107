import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { writeFileAtomic } from "../util/fs-atomic.js";
import { hash64 } from "../util/hash.js";

/**
 * Every project that uses a cache folder leaves here the keys its lock names (a "root", as in a
 * garbage collector): `gc` of one project, in a cache shared with others, keeps every answer any
 * of them still names. One file per (machine, manifest path), rewritten by each build that
 * writes a lock.
 */
export interface Root {
  /** The manifest's name (the project). */
  project: string;
  host: string;
  manifest: string;
  keys: string[];
}

function rootsDir(cacheDir: string): string {
  return join(cacheDir, "state", "roots");
}

export function rootId(manifestFile: string): string {
  return hash64(`${hostname()}\u0000${manifestFile}`);
}

export function hasRoot(cacheDir: string, manifestFile: string): boolean {
  return existsSync(join(rootsDir(cacheDir), `${rootId(manifestFile)}.json`));
}

export async function writeRoot(cacheDir: string, project: string, manifestFile: string, keys: string[]): Promise<void> {
  const root: Root = { project, host: hostname(), manifest: manifestFile, keys: [...new Set(keys)].sort() };
  await writeFileAtomic(join(rootsDir(cacheDir), `${rootId(manifestFile)}.json`), JSON.stringify(root), { fsync: false });
}

/** Every root in the cache, by id (unreadable ones skipped: a root being written is rewritten whole). */
export async function readRoots(cacheDir: string): Promise<Map<string, Root>> {
  const out = new Map<string, Root>();
  let files: string[];
  try {
    files = await readdir(rootsDir(cacheDir));
  } catch {
    return out;
  }
  for (const f of files.sort()) {
    if (!f.endsWith(".json")) continue;
    try {
      const r = JSON.parse(await readFile(join(rootsDir(cacheDir), f), "utf8")) as Root;
      if (Array.isArray(r.keys) && typeof r.project === "string") out.set(f.slice(0, -5), r);
    } catch {
      // being rewritten, or damaged: its project's next build writes it again
    }
  }
  return out;
}
