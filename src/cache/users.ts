import { randomBytes } from "node:crypto";
import { open, readdir, readFile, rm, stat, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { InterruptedError } from "../errors.js";
import { makeDirs } from "../util/make-dirs.js";

/**
 * Who is using a cache folder, so that `gc` never deletes an answer a running build has just paid
 * for or is about to name in its lock. A build registers itself (a file in `state/users/`) for
 * as long as it runs; `gc` takes `state/gc.lock` and waits until no build is registered. Each
 * side announces itself before looking for the other, so at least one of the two always sees
 * the other (neither can slip in between the other's look and its announcement).
 *
 * Builds of other machines sharing the folder cannot be asked whether they live: they refresh
 * their file's time every minute, and one not refreshed for ten is taken to be dead.
 */

interface Holder {
  host: string;
  pid: number;
  /** Random, so a PID reused after a crash (PID 1 in a container) is never taken for this process. */
  token: string;
}

const FOREIGN_STALE_MS = 10 * 60_000;
const HEARTBEAT_MS = 60_000;

/** A wait Ctrl-C ends as an interruption (exit 130), having changed nothing. */
async function pause(signal: AbortSignal | undefined, what: string): Promise<void> {
  try {
    await sleep(200, undefined, { signal });
  } catch {
    throw new InterruptedError(`interrupted while ${what}; nothing was changed`);
  }
}

function me(): Holder {
  return { host: hostname(), pid: process.pid, token: randomBytes(6).toString("hex") };
}

/** Tokens this process holds: a build and a gc may run in one process (the library API). */
const held = new Set<string>();

async function alive(path: string, h: Holder): Promise<boolean> {
  if (h.host !== hostname()) {
    const st = await stat(path).catch(() => undefined);
    return st !== undefined && Date.now() - st.mtimeMs < FOREIGN_STALE_MS;
  }
  // This process holds only what it knows it holds: its PID with another token is a dead
  // predecessor's (a PID reused in a restarted container).
  if (h.pid === process.pid) return held.has(h.token);
  try {
    process.kill(h.pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const h = JSON.parse(await readFile(path, "utf8")) as Holder;
    return typeof h.pid === "number" && typeof h.host === "string" ? h : undefined;
  } catch {
    return undefined;
  }
}

async function create(path: string, h: Holder): Promise<boolean> {
  try {
    const fh = await open(path, "wx");
    await fh.writeFile(JSON.stringify(h));
    await fh.close();
    held.add(h.token);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

async function remove(path: string, h: Holder): Promise<void> {
  held.delete(h.token);
  await rm(path, { force: true });
}

function heartbeat(path: string): () => void {
  const timer = setInterval(() => {
    const now = new Date();
    void utimes(path, now, now).catch(() => {});
  }, HEARTBEAT_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/**
 * Register a build as a user of the cache; waits while a gc runs. Returns the release. A cache
 * folder that cannot be written gets no registration (nothing could be deleted from it either).
 */
export async function useCache(cacheDir: string, onWait: (what: string) => void, signal?: AbortSignal): Promise<() => Promise<void>> {
  const state = join(cacheDir, "state");
  const users = join(state, "users");
  const self = me();
  const path = join(users, `${self.host}-${self.pid}-${self.token}.json`);
  let told = false;
  for (;;) {
    try {
      await makeDirs(users);
      await create(path, self);
    } catch {
      return async () => {};
    }
    const gc = await readHolder(join(state, "gc.lock"));
    if (!gc || !(await alive(join(state, "gc.lock"), gc))) {
      const stop = heartbeat(path);
      return async () => {
        stop();
        await remove(path, self);
      };
    }
    await remove(path, self);
    if (!told) onWait(`waiting for gc (pid ${gc.pid} on ${gc.host}) to finish with the cache`);
    told = true;
    await pause(signal, "waiting for gc");
  }
}

/**
 * Take the cache for gc: no build may register while it is held, and it returns once every build
 * already registered has finished. A stale gc.lock (its process gone) is taken over.
 */
export async function lockCacheForGc(cacheDir: string, onWait: (what: string) => void, signal?: AbortSignal): Promise<() => Promise<void>> {
  const state = join(cacheDir, "state");
  const lock = join(state, "gc.lock");
  const self = me();
  await makeDirs(join(state, "users"));
  let told = "";
  const say = (what: string) => {
    if (told !== what) onWait(what);
    told = what;
  };
  for (;;) {
    if (await create(lock, self)) break;
    const other = await readHolder(lock);
    if (!other || !(await alive(lock, other))) {
      await rm(lock, { force: true });
      continue;
    }
    say(`waiting for another gc (pid ${other.pid} on ${other.host})`);
    await pause(signal, "waiting for another gc");
  }
  const release = async () => {
    stop();
    await remove(lock, self);
  };
  const stop = heartbeat(lock);
  try {
    for (;;) {
      const live: Holder[] = [];
      for (const f of await readdir(join(state, "users"))) {
        const p = join(state, "users", f);
        const h = await readHolder(p);
        if (h && (await alive(p, h))) live.push(h);
        else if (h || f.endsWith(".json")) await rm(p, { force: true });
      }
      if (!live.length) return release;
      say(`waiting for ${live.length} build${live.length === 1 ? "" : "s"} using this cache to finish (pid ${live.map((h) => h.pid).join(", ")})`);
      await pause(signal, "waiting for builds to finish");
    }
  } catch (err) {
    await release();
    throw err;
  }
}
