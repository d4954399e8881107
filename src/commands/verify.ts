import { join } from "node:path";
import { VerifyError } from "../errors.js";
import { CacheResolver } from "../execute/resolver.js";
import { walk } from "../execute/walk.js";
import { answerProblems, decide } from "../freshness/decide.js";
import { attemptsOfLock } from "../lock/attempts.js";
import { lockKeys, readLock, serializeLock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import { cardProblem } from "../output/card.js";
import { emit } from "../output/emit.js";
import { assembleLock } from "../output/lock-entries.js";
import { hashOnDisk } from "../output/read-back.js";
import { withAttempts } from "../plan/attempts.js";
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
  const { manifest: m, paths, cache, samples: drawn } = await openProject(opts);
  const existing = await readLock(paths.lock);
  const samples = withAttempts(m, drawn, attemptsOfLock(existing?.lock));
  if (!existing) throw new VerifyError([`no lock at ${paths.lock}: run \`synthbuild build\` first`]);
  const { lock } = existing;
  const problems: string[] = [];

  for (const o of lock.outputs) {
    const actual = await outputHash(m, o.path);
    if (actual === undefined) problems.push(`${o.path} is missing`);
    else if (actual.hash !== o.hash)
      problems.push(`${o.path} differs from the lock (${actual.rows} rows on disk, ${o.rows} in the lock): it was edited or is from another build`);
  }

  const card = await cardProblem(m, lock, existing.hash);
  if (card) problems.push(`${card}: \`synthbuild build\` writes it anew`);

  const offline = lock.header.offline === true;
  // What a build would decide, before anything below evicts a corrupt entry.
  const verdict = await decide(m, samples, cache, existing, { offline });
  const answers = await answerProblems(cache, lock);
  problems.push(...answers);
  // A corrupt entry is worth nothing and, left in place, would pass the presence check of every
  // no-op build: removed, so the next build asks for it again (or `pull` fetches it).
  let evicted = 0;
  for (const s of lock.samples)
    for (const st of Object.values(s.steps))
      if (st.key && (await cache.has(st.key)) && !(await cache.get(st.key, { evict: false }))) await cache.delete(st.key), evicted++;
  if (evicted)
    problems.push(
      `${evicted} corrupt cache entr${evicted === 1 ? "y was" : "ies were"} removed: \`synthbuild build\` requests ${evicted === 1 ? "it" : "them"} again (or \`synthbuild pull\` fetches ${evicted === 1 ? "it" : "them"} from the remote)`,
    );
  const cacheEntries = lockKeys(lock).length;

  // The lock re-derived from the manifest and the cache, as if nothing were known: the ground
  // truth that the recipe comparison in decide() stands in for.
  const runs = samples.map((s) => newRun(m, s));
  await walk(m, runs, { cached: new CacheResolver(cache, false), width: 256, providerOverride: offline ? "echo" : undefined });
  const pending = runs.filter((r) => r.status === "pending").length;
  const fresh = serializeLock(assembleLock(m, runs, await emit(m, runs, { write: false }), offline));
  if (pending)
    problems.push(`${pending} sample${pending === 1 ? "" : "s"} of the manifest ${pending === 1 ? "is" : "are"} not built: run \`synthbuild build\``);
  else if (hash64(fresh) !== existing.hash)
    problems.push(`dataset.lock does not match ${m.file.split("/").pop()}: the manifest changed since the last build; run \`synthbuild build\``);
  if (verdict.upToDate && !answers.length && !pending && hash64(fresh) !== existing.hash)
    problems.push("internal: a build would call this up to date, but the lock re-derived from the manifest differs (a bug in synthbuild; please report it)");

  if (problems.length) throw new VerifyError(problems);
  return { samples: lock.samples.length, outputs: lock.outputs.length, cacheEntries };
}

async function outputHash(m: Manifest, path: string): Promise<{ hash: string; rows: number } | undefined> {
  const isFiles = m.outputs.some((o) => o.format === "files" && (o.path === path || path.startsWith(`${o.path}/`)));
  return hashOnDisk(join(m.dir, path), isFiles ? "files" : "jsonl");
}
