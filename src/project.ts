import { open, readFile, rm } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Manifest } from "./manifest/types.js";

export interface ProjectPaths {
  lock: string;
  cacheDir: string;
  buildLock: string;
}

/** `dataset.yaml` → `dataset.lock` beside it; the cache in `cache/` unless told otherwise. */
export function projectPaths(m: Pick<Manifest, "file" | "dir">, cacheDir?: string, env: NodeJS.ProcessEnv = process.env): ProjectPaths {
  const stem = basename(m.file, extname(m.file));
  const cache = cacheDir ?? env.SYNTHBUILD_CACHE_DIR;
  return {
    lock: join(m.dir, `${stem}.lock`),
    cacheDir: cache ? resolve(cache) : join(m.dir, "cache"),
    buildLock: join(m.dir, `.${stem}.building`),
  };
}

/**
 * One build per manifest at a time: a second build waits for the first (their cache writes could
 * never conflict, but their dist/ and lock writes could interleave). A lock left by a killed
 * process is taken over.
 */
export async function acquireBuildLock(path: string, onWait: (pid: number) => void, signal?: AbortSignal): Promise<() => Promise<void>> {
  let told = false;
  for (;;) {
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => rm(path, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const pid = Number((await readFile(path, "utf8").catch(() => "")).trim());
    if (!pid || !alive(pid)) {
      // Empty (a writer between open and write) gets one grace period before being treated as stale.
      if (!pid) await sleep(100);
      const again = Number((await readFile(path, "utf8").catch(() => "")).trim());
      if (!again || !alive(again)) {
        await rm(path, { force: true });
        continue;
      }
    }
    if (!told) {
      onWait(pid);
      told = true;
    }
    await sleep(200, undefined, { signal });
  }
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
