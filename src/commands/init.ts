import { access, appendFile, readFile, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import { makeDirs } from "../util/make-dirs.js";
import { exampleManifest } from "./example.js";

const PLACES =
  "# One value a line. Blank lines and lines starting with # are skipped.\nParis\na lighthouse on the Faroe Islands\nKyoto\na generation ship between stars\n";

/** Write the starter manifest (and the places file it reads) and keep the cache out of git; never overwrite unless forced. */
export async function init(opts: { cwd?: string; file?: string; force?: boolean } = {}): Promise<{ written: string[] }> {
  const cwd = opts.cwd ?? process.cwd();
  const manifest = resolve(cwd, opts.file ?? "dataset.yaml");
  const places = join(dirname(manifest), "data", "places.txt");
  if (!opts.force) {
    for (const p of [manifest, places]) {
      if (await exists(p)) throw new UsageError(`${p} already exists`, "pass --force to overwrite it");
    }
  }
  await makeDirs(dirname(places));
  await writeFile(manifest, exampleManifest("./node_modules/synthbuild/schema/dataset.schema.json"));
  await writeFile(places, PLACES);
  const ignore = join(dirname(manifest), ".gitignore");
  const ignored = await ignoreCache(ignore);
  return { written: ignored ? [manifest, places, ignore] : [manifest, places] };
}

/**
 * The cache is shared through a remote, never through git: one answer a file, thousands of them.
 * A .gitignore that already names it (in any of git's spellings) is left as it is.
 */
async function ignoreCache(path: string): Promise<boolean> {
  const text = await readFile(path, "utf8").catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw err;
  });
  if (text === undefined) {
    await writeFile(path, "cache/\n");
    return true;
  }
  const lines = text.split(/\r?\n/).map((l) => l.trim());
  if (lines.some((l) => ["cache", "cache/", "/cache", "/cache/"].includes(l))) return false;
  await appendFile(path, `${text === "" || text.endsWith("\n") ? "" : "\n"}cache/\n`);
  return true;
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
