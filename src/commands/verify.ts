import { join } from "node:path";
import { VerifyError } from "../errors.js";
import { CacheResolver } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import { readLock, serializeLock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import { emit } from "../output/emit.js";
import { assembleLock } from "../output/lock-entries.js";
import { hashOnDisk } from "../output/read-back.js";
import { newRun } from "../plan/pipeline.js";
import { hash64 } from "../util/hash.js";
import { type CommonOptions, openProject } from "./context.js";

export interface VerifyResult {
  samples: number;
  outputs: number;
  cacheEntries: number;
}

/**
 * Does what is on disk agree with dataset.lock? Every output file's hash and row count, every
 * cached answer the lock names, and the lock itself against what the manifest now describes.
 * Throws VerifyError listing every problem.
 */
export async function verify(opts: CommonOptions = {}): Promise<VerifyResult> {
  const { manifest: m, paths, cache, samples } = await openProject(opts);
  const existing = await readLock(paths.lock);
  if (!existing) throw new VerifyError([`no lock at ${paths.lock}: run \`synthbuild build\` first`]);
  const { lock } = existing;
  const problems: string[] = [];

  for (const o of lock.outputs) {
    const actual = await outputHash(m, o.path);
    if (actual === undefined) problems.push(`${o.path} is missing`);
    else if (actual.hash !== o.hash)
      problems.push(`${o.path} differs from the lock (${actual.rows} rows on disk, ${o.rows} in the lock): it was edited or is from another build`);
  }

  let cacheEntries = 0;
  for (const s of lock.samples) {
    for (const [stepId, st] of Object.entries(s.steps)) {
      if (!st.key) continue;
      const e = await cache.get(st.key, { evict: false });
      cacheEntries++;
      if (!e) problems.push(`sample ${s.id} step ${stepId}: answer ${st.key} is ${(await cache.has(st.key)) ? "corrupt in" : "not in"} the cache`);
      else if (st.out && hash64(e.response.text) !== st.out) problems.push(`sample ${s.id} step ${stepId}: cached answer differs from the lock`);
    }
  }

  const runs = samples.map((s) => newRun(m, s));
  const offline = lock.header.offline === true;
  await walk(m, runs, { cached: new CacheResolver(cache, false), width: 256, providerOverride: offline ? "echo" : undefined });
  const pending = runs.filter((r) => r.status === "pending").length;
  const fresh = serializeLock(assembleLock(m, runs, await emit(m, runs, { write: false }), offline));
  if (pending)
    problems.push(`${pending} sample${pending === 1 ? "" : "s"} of the manifest ${pending === 1 ? "is" : "are"} not built: run \`synthbuild build\``);
  else if (hash64(fresh) !== existing.hash)
    problems.push(`dataset.lock does not match ${m.file.split("/").pop()}: the manifest changed since the last build; run \`synthbuild build\``);

  if (problems.length) throw new VerifyError(problems);
  return { samples: lock.samples.length, outputs: lock.outputs.length, cacheEntries };
}

async function outputHash(m: Manifest, path: string): Promise<{ hash: string; rows: number } | undefined> {
  const isFiles = m.outputs.some((o) => o.format === "files" && (o.path === path || path.startsWith(`${o.path}/`)));
  return hashOnDisk(join(m.dir, path), isFiles ? "files" : "jsonl");
}
