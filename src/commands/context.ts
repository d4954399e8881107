import { dirname, resolve } from "node:path";
import { Cache } from "../cache/store.js";
import type { BuildEvents } from "../events.js";
import { candidates, expand } from "../expand/expand.js";
import type { Sample } from "../expand/sample.js";
import { type CandidateCount, candidateCount } from "../expand/target.js";
import { readLock } from "../lock/lockfile.js";
import { loadManifest } from "../manifest/load.js";
import type { Manifest } from "../manifest/types.js";
import { wastedWork } from "../manifest/wasted-work.js";
import { type ProjectPaths, projectPaths } from "../project.js";
import { initHashing } from "../util/hash.js";

/** Options every command shares. */
export interface CommonOptions {
  /** Path of the manifest, relative to cwd (default dataset.yaml). */
  file?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Cache folder (default: cache/ beside the manifest, or $SYNTHBUILD_CACHE_DIR). */
  cacheDir?: string;
  events?: BuildEvents;
  /** Abort (Ctrl-C), heard from the moment the manifest is read. */
  signal?: AbortSignal;
  /** A remote cache URL (s3://bucket/prefix, file:///path or a folder), overriding the manifest's `cache.remote`. */
  remote?: string;
}

export interface Project {
  manifest: Manifest;
  paths: ProjectPaths;
  cache: Cache;
  samples: Sample[];
  /** With `target:`: how many candidates `samples` holds, and why. */
  candidates?: CandidateCount;
}

export async function openProject(opts: CommonOptions): Promise<Project> {
  await initHashing();
  const env = opts.env ?? process.env;
  const manifest = await loadManifest(opts.file ?? "dataset.yaml", { cwd: opts.cwd, env, signal: opts.signal, cacheDir: locateProject(opts).paths.cacheDir });
  const paths = projectPaths(manifest, cacheDirOption(opts), env);
  const cache = new Cache(paths.cacheDir, (msg) => opts.events?.warn?.(msg), manifest.name);
  for (const w of wastedWork(manifest)) opts.events?.warn?.(w);
  if (manifest.target) {
    // An unreadable lock is the build's to report; here it only means nothing is known.
    const lock = await readLock(paths.lock).catch(() => undefined);
    const count = candidateCount(manifest.target, lock?.lock.header);
    return { manifest, paths, cache, samples: candidates(manifest, count.count), candidates: count };
  }
  const samples = expand(manifest);
  const n = manifest.combine.n;
  if (manifest.combine.mode === "sample" && n !== undefined && n > samples.length / manifest.combine.repeat) {
    opts.events?.warn?.(`combine.n is ${n}, but there are only ${samples.length / manifest.combine.repeat} combinations: all of them are used`);
  }
  return { manifest, paths, cache, samples };
}

/** The manifest's absolute path and the project's paths, before (or without) reading it. */
export function locateProject(opts: CommonOptions): { file: string; paths: ProjectPaths } {
  const file = resolve(opts.cwd ?? process.cwd(), opts.file ?? "dataset.yaml");
  return { file, paths: projectPaths({ file, dir: dirname(file) }, cacheDirOption(opts), opts.env ?? process.env) };
}

function cacheDirOption(opts: CommonOptions): string | undefined {
  return opts.cacheDir ? resolveFrom(opts.cwd, opts.cacheDir) : undefined;
}

function resolveFrom(cwd: string | undefined, p: string): string {
  return cwd && !p.startsWith("/") ? `${cwd}/${p}` : p;
}
