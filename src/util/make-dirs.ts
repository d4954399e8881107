import { mkdirSync, statSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { dirname } from "node:path";

// `mkdir -p`, one level at a time. Node 20's recursive mkdir spins forever (at 100% CPU, deaf to
// SIGTERM, since the loop is in the thread pool) when a parent answers ENOENT to a mkdir while it
// exists, as /proc does (`--cache-dir /proc/nope`), and it says ENOENT for a parent on a read-only
// file system. One level at a time, the real cause (EROFS, EACCES, ENOENT) comes back at once.

function missingAncestors(dir: string): string[] {
  const missing: string[] = [];
  for (let d = dir; ; d = dirname(d)) {
    try {
      statSync(d);
      break;
    } catch {
      missing.push(d);
      if (dirname(d) === d) break;
    }
  }
  return missing.reverse();
}

const existed = (err: NodeJS.ErrnoException) => {
  if (err.code !== "EEXIST") throw err;
};

export async function makeDirs(dir: string, mode?: number): Promise<void> {
  for (const d of missingAncestors(dir)) await mkdir(d, { mode }).catch(existed);
}

export function makeDirsSync(dir: string, mode?: number): void {
  for (const d of missingAncestors(dir)) {
    try {
      mkdirSync(d, { mode });
    } catch (err) {
      existed(err as NodeJS.ErrnoException);
    }
  }
}
