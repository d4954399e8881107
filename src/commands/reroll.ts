import { UsageError } from "../errors.js";
import { type LockSample, readLock, serializeLock } from "../lock/lockfile.js";
import type { Manifest } from "../manifest/types.js";
import { acquireBuildLock } from "../project.js";
import { writeFileAtomic } from "../util/fs-atomic.js";
import { type BuildOptions, type BuildResult, build } from "./build.js";
import { openProject } from "./context.js";
import { findSample } from "./sample-ids.js";

export interface RerollOptions extends Omit<BuildOptions, "frozen" | "limit"> {
  /** The generate step to draw again (default: each sample's first generate step; what reads it follows). */
  step?: string;
  /** false: only record the new attempts in the lock; the next `synthbuild build` draws them. */
  build?: boolean;
}

export interface RerollResult {
  /** Each sample rerolled, the step drawn again and its attempt now. */
  rerolled: { sample: string; step: string; attempt: number }[];
  /** The build that drew them (absent with `build: false`). */
  build?: BuildResult;
  /**
   * Rerolled samples whose new answer is the very text of the one before: the endpoint is
   * deterministic for this request (temperature 0, a `seed` parameter, a cache in front of it).
   */
  sameAnswer: string[];
}

/**
 * New answers for chosen samples: the attempt of a step is bumped in the lock, which changes that
 * step's request identity (nonce and cache key) for those samples alone, then the build draws it.
 * The attempt is recorded rather than the old answer deleted, so the release stays reproducible:
 * the lock says which draw was released, and the cache holds it (and the earlier ones).
 */
export async function reroll(ids: string[], opts: RerollOptions = {}): Promise<RerollResult> {
  if (ids.length === 0)
    throw new UsageError("reroll needs at least one sample id", "e.g. `synthbuild reroll 0d9a` (ids are in dataset.lock and `synthbuild plan --explain`)");
  const { manifest: m, paths, samples } = await openProject(opts);
  const step = stepToReroll(m, opts.step);
  const chosen = [...new Set(ids.map((id) => findSample(m, samples, id).id))];
  const release = await acquireBuildLock(
    paths.buildLock,
    (pid) => opts.events?.warn?.(`waiting for another build of this manifest (pid ${pid}) to finish`),
    opts.signal,
  );
  const rerolled: RerollResult["rerolled"] = [];
  const before = new Map<string, string | undefined>();
  try {
    // Read under the build lock: a build finishing meanwhile would otherwise write over the bump.
    const existing = await readLock(paths.lock);
    if (!existing) throw new UsageError("there is no dataset.lock: nothing has been drawn to reroll yet", "run `synthbuild build` first");
    const byId = new Map(existing.lock.samples.map((s) => [s.id, s]));
    for (const id of chosen) {
      const entry = byId.get(id);
      if (!entry)
        throw new UsageError(`sample ${id} is not in dataset.lock: it has not been built yet`, "run `synthbuild build` first; it draws its first answer");
      const was = entry.steps[step];
      if (!was?.key)
        throw new UsageError(
          `sample ${id} has no answer for step '${step}' to reroll${entry.reason ? ` (${entry.status} by '${entry.reason.step}': ${entry.reason.why})` : ""}`,
          entry.status === "failed" || entry.status === "pending"
            ? "`synthbuild build` asks again for samples that failed or were not built"
            : "pick a step it reached with --step",
        );
      before.set(id, was.out);
      rerolled.push({ sample: id, step, attempt: bump(entry, step) });
    }
    // Only the attempts change: the recipes still name the old draw, so every check (decide,
    // verify, --frozen) sees these samples as stale until a build draws the new one.
    await writeFileAtomic(paths.lock, serializeLock(existing.lock));
  } finally {
    await release();
  }
  if (opts.build === false) return { rerolled, sameAnswer: [] };
  const built = await build(opts);
  const after = await readLock(paths.lock);
  const now = new Map(after?.lock.samples.map((s) => [s.id, s.steps[step]?.out]) ?? []);
  const sameAnswer = rerolled.filter((r) => before.get(r.sample) !== undefined && now.get(r.sample) === before.get(r.sample)).map((r) => r.sample);
  return { rerolled, build: built, sameAnswer };
}

function bump(entry: LockSample, step: string): number {
  const n = (entry.attempts?.[step] ?? 0) + 1;
  entry.attempts = { ...entry.attempts, [step]: n };
  return n;
}

function stepToReroll(m: Manifest, step: string | undefined): string {
  const generate = m.steps.filter((s) => s.kind === "generate").map((s) => s.id);
  if (generate.length === 0) throw new UsageError("the manifest has no generate step: there is no answer to draw again");
  if (step === undefined) return generate[0]!;
  if (!generate.includes(step)) {
    const what = m.steps.some((s) => s.id === step) ? `step '${step}' is not a generate step` : `there is no step '${step}'`;
    throw new UsageError(`${what}: only a model's answer can be drawn again`, `--step takes one of: ${generate.join(", ")}`);
  }
  return step;
}
