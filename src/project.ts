import { randomBytes } from "node:crypto";
import { statSync } from "node:fs";
import { open, readFile, rm } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { InterruptedError, UsageError } from "./errors.js";
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
  const paths = {
    lock: join(m.dir, `${stem}.lock`),
    cacheDir: cache ? resolve(cache) : join(m.dir, "cache"),
    buildLock: join(m.dir, `.${stem}.building`),
  };
  mustBeFolder(paths.cacheDir, cacheDir !== undefined ? "--cache-dir" : cache ? "SYNTHBUILD_CACHE_DIR" : "the cache folder");
  return paths;
}

/** A cache path that is a file (a typo, a path given the wrong way round) is the user's to fix, said before anything reads it. */
function mustBeFolder(dir: string, what: string): void {
  let file = false;
  try {
    file = statSync(dir, { throwIfNoEntry: false })?.isDirectory() === false;
  } catch (err) {
    // A file where a parent folder should be.
    file = (err as NodeJS.ErrnoException).code === "ENOTDIR";
    if (!file) throw err;
  }
  if (file)
    throw new UsageError(
      `${what} ${dir} is not a folder`,
      what === "the cache folder"
        ? "move the file named cache beside the manifest, or pass --cache-dir <folder>"
        : "give a folder (it is made if missing), or leave it out for cache/ beside the manifest",
    );
}

/**
 * One build per manifest at a time: a second build waits for the first (their cache writes could
 * never conflict, but their dist/ and lock writes could interleave). A lock left by a killed
 * process is taken over, including one that names this very process's PID (PID 1 in a container
 * restarted after kill -9): a random token tells this process's lock from a dead one's. Ctrl-C
 * while waiting is an interruption (exit 130), not an error.
 */
export async function acquireBuildLock(path: string, onWait: (pid: number) => void, signal?: AbortSignal): Promise<() => Promise<void>> {
  const token = `${process.pid}:${randomBytes(6).toString("hex")}`;
  let told = false;
  for (;;) {
    if (signal?.aborted) throw new InterruptedError("interrupted while waiting for another build of this manifest; nothing was changed");
    try {
      const fh = await open(path, "wx");
      await fh.writeFile(token);
      await fh.close();
      held.add(token);
      return async () => {
        held.delete(token);
        await rm(path, { force: true });
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    const holder = await readFile(path, "utf8").catch(() => "");
    const pid = Number(holder.split(":")[0]);
    if (!pid || !alive(holder)) {
      // Empty (a writer between open and write) gets one grace period before being treated as stale.
      if (!pid) await sleep(100);
      const again = await readFile(path, "utf8").catch(() => "");
      if (!Number(again.split(":")[0]) || !alive(again)) {
        await rm(path, { force: true });
        continue;
      }
    }
    if (!told) {
      onWait(pid);
      told = true;
    }
    try {
      await sleep(200, undefined, { signal });
    } catch {
      throw new InterruptedError("interrupted while waiting for another build of this manifest; nothing was changed");
    }
  }
}

/** Tokens of the build locks this process holds (the library may run several builds at once). */
const held = new Set<string>();

function alive(holder: string): boolean {
  const pid = Number(holder.split(":")[0]);
  // This process knows the locks it holds: one naming its PID without one of its tokens is a
  // dead predecessor's.
  if (pid === process.pid) return held.has(holder);
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
