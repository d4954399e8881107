import { randomBytes } from "node:crypto";
import type { Stats } from "node:fs";
import { open, readFile, rm, stat, utimes } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { hash64 } from "../util/hash.js";
import { makeDirs } from "../util/make-dirs.js";

/**
 * "Is this key in a pending batch? If not: upload, record, create" must be one step for every
 * build sharing the cache folder (two terminals, two checkouts, CI shards on one machine): two
 * builds that both look before either records would both pay. So it is done holding a claim, a
 * file in `state/claims/` created with O_EXCL, one per endpoint and model (the keys of one cannot
 * be another's). A second build waits for it, then finds the first one's record and waits for
 * that batch instead of submitting its own.
 *
 * A claim left by a killed build is taken over when it is stale:
 * - on this host, at once when its PID is gone (kill -9 while uploading);
 * - on any host, when its holder has not refreshed the file's time for `leaseMs`: a build of
 *   another machine cannot be asked whether it lives, and a PID reused after a crash, or a build
 *   suspended (Ctrl-Z) mid-submission, must not hold every other build back for ever. A holder
 *   refreshes it every `leaseMs / 6`, and asks `holds()` before each step that pays (writing the
 *   record, creating the batch): one that lost its claim while it slept does neither.
 *
 * Taking a stale claim over goes through a second O_EXCL file (`.takeover`), so two builds that
 * find one stale claim cannot both remove it, one removing the claim the other has just made.
 */

interface Holder {
  host: string;
  pid: number;
  /** Random: a PID reused after a crash (PID 1 in a container) is never taken for this process. */
  token: string;
}

export interface Claim {
  /** Whether this build still holds it (it was not taken over as stale while this build slept). */
  holds(): Promise<boolean>;
}

export interface ClaimOptions {
  signal?: AbortSignal;
  /** Told once, when the claim is another build's: what this one waits for. */
  onWait?: (holder: { pid: number; host: string }) => void;
  /** How long a holder that does not refresh its claim keeps it (default 2 min). */
  leaseMs?: number;
}

const LEASE_MS = 120_000;
/** A takeover is a read and two unlinks: one older than this was left by a killed process. */
const TAKEOVER_STALE_MS = 10_000;
/** A claim whose holder is not written yet is a build between its create and its write, for this long at most. */
const UNWRITTEN_MS = 2_000;
const WAIT_MS = 100;

/** Claims of this process, per file: its own builds (steps, library callers) queue here, not on the disk. */
const queues = new Map<string, Promise<void>>();

/** The claim file of one endpoint and model in a cache folder. */
export function claimPath(cacheDir: string, endpoint: string, model: string): string {
  return join(cacheDir, "state", "claims", `batch-${hash64(`${endpoint}\n${model}`)}.claim`);
}

/**
 * Run `fn` holding the claim at `path`, waiting for it while another build holds it. Undefined
 * when interrupted (`opts.signal`) before it was had.
 */
export async function withClaim<T>(path: string, fn: (claim: Claim) => Promise<T>, opts: ClaimOptions = {}): Promise<T | undefined> {
  const before = queues.get(path) ?? Promise.resolve();
  let done!: () => void;
  const turn = new Promise<void>((r) => (done = r));
  const tail = before.then(() => turn);
  queues.set(path, tail);
  try {
    await before;
    const me: Holder = { host: hostname(), pid: process.pid, token: randomBytes(8).toString("hex") };
    const leaseMs = opts.leaseMs ?? LEASE_MS;
    if (!(await acquire(path, me, leaseMs, opts))) return undefined;
    const timer = setInterval(() => {
      const now = new Date();
      void utimes(path, now, now).catch(() => {});
    }, leaseMs / 6);
    timer.unref();
    try {
      return await fn({ holds: async () => (await readHolder(path))?.token === me.token });
    } finally {
      clearInterval(timer);
      // Only its own: a claim taken over while this build slept is the new holder's.
      if ((await readHolder(path))?.token === me.token) await rm(path, { force: true });
    }
  } finally {
    done();
    if (queues.get(path) === tail) queues.delete(path);
  }
}

async function acquire(path: string, me: Holder, leaseMs: number, opts: ClaimOptions): Promise<boolean> {
  let told = false;
  for (;;) {
    if (opts.signal?.aborted) return false;
    if (await create(path, me)) return true;
    const holder = await readHolder(path);
    const st = await stat(path).catch(() => undefined);
    if (!st) continue;
    if (stale(st, holder, leaseMs)) await takeOver(path, holder, st);
    else {
      if (holder && !told) opts.onWait?.({ pid: holder.pid, host: holder.host });
      told ||= holder !== undefined;
      try {
        await sleep(WAIT_MS, undefined, { signal: opts.signal });
      } catch {
        return false;
      }
    }
  }
}

async function create(path: string, h: Holder): Promise<boolean> {
  await makeDirs(dirname(path));
  try {
    const fh = await open(path, "wx");
    try {
      await fh.writeFile(JSON.stringify(h));
    } finally {
      await fh.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw err;
  }
}

async function readHolder(path: string): Promise<Holder | undefined> {
  try {
    const h = JSON.parse(await readFile(path, "utf8")) as Holder;
    return typeof h.pid === "number" && typeof h.host === "string" && typeof h.token === "string" ? h : undefined;
  } catch {
    return undefined;
  }
}

function stale(st: Stats, h: Holder | undefined, leaseMs: number): boolean {
  const age = Date.now() - st.mtimeMs;
  if (!h) return age > UNWRITTEN_MS;
  if (age > leaseMs) return true;
  if (h.host !== hostname()) return false;
  // This process holds no claim through the disk without its queue: its PID there is a dead predecessor's.
  if (h.pid === process.pid) return true;
  try {
    process.kill(h.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== "EPERM";
  }
}

/**
 * Remove the stale claim seen (its holder and its file), unless another build removed it, and
 * perhaps claimed anew, meanwhile.
 */
async function takeOver(path: string, seen: Holder | undefined, was: Stats): Promise<void> {
  const lock = `${path}.takeover`;
  const mine = await open(lock, "wx").then(
    (fh) => fh.close().then(() => true),
    async (err: NodeJS.ErrnoException) => {
      if (err.code !== "EEXIST") throw err;
      const st = await stat(lock).catch(() => undefined);
      if (st && Date.now() - st.mtimeMs > TAKEOVER_STALE_MS) await rm(lock, { force: true });
      return false;
    },
  );
  if (!mine) return sleep(WAIT_MS / 4);
  try {
    const now = await readHolder(path);
    const st = await stat(path).catch(() => undefined);
    if (st && st.ino === was.ino && st.dev === was.dev && now?.token === seen?.token) await rm(path, { force: true });
  } finally {
    await rm(lock, { force: true });
  }
}
