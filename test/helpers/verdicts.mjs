// Prints, as one JSON object, the three answers to "is this project up to date?" for the
// freshness differential test: the stamp's, decide()'s, and a full re-derivation's. A fresh
// process each time, as a user's every command is: a run module or its imports edited since
// the last look must be loaded anew, not served from this process's module cache.
import { locateProject, openProject } from "../../lib/commands/context.js";
import { CacheResolver } from "../../lib/execute/resolver.js";
import { walk } from "../../lib/execute/walk.js";
import { decide } from "../../lib/freshness/decide.js";
import { upToDate } from "../../lib/freshness/stamp.js";
import { attemptsOfLock } from "../../lib/lock/attempts.js";
import { lockKeys, readLock, serializeLock } from "../../lib/lock/lockfile.js";
import { emit } from "../../lib/output/emit.js";
import { assembleLock } from "../../lib/output/lock-entries.js";
import { outputsDiffer } from "../../lib/output/read-back.js";
import { withAttempts } from "../../lib/plan/attempts.js";
import { newRun } from "../../lib/plan/pipeline.js";
import { hash64, initHashing } from "../../lib/util/hash.js";

await initHashing();
const opts = { cwd: process.cwd(), env: process.env, offline: true };
const located = locateProject(opts);
const stamp = await upToDate(located.file, located.paths, { offline: true, env: process.env });
const project = await openProject(opts);
const existing = await readLock(project.paths.lock).catch(() => undefined);
// Rerolled samples are what the lock's attempts make them, for a build and for the truth alike.
const samples = withAttempts(project.manifest, project.samples, attemptsOfLock(existing?.lock));
const full = await decide(project.manifest, samples, project.cache, existing, { offline: true });
let truth = false;
if (existing) {
  const m = project.manifest;
  const runs = samples.map((s) => newRun(m, s));
  await walk(m, runs, { cached: new CacheResolver(project.cache, false), width: 16, providerOverride: "echo" });
  const lock = assembleLock(m, runs, await emit(m, runs, { write: false }), true);
  truth =
    runs.every((r) => r.status !== "pending") &&
    hash64(serializeLock(lock)) === existing.hash &&
    (await outputsDiffer(m, existing.lock)) === undefined &&
    project.cache.firstMissing(lockKeys(existing.lock)) === undefined;
}
process.stdout.write(JSON.stringify({ stamp: stamp.holds, full: full.upToDate, why: full.upToDate ? "" : full.why, truth }));
