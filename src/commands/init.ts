import { access, writeFile } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { UsageError } from "../errors.js";
import { makeDirs } from "../util/make-dirs.js";
import { exampleManifest } from "./example.js";

const PLACES =
  "# One value a line. Blank lines and lines starting with # are skipped.\nParis\na lighthouse on the Faroe Islands\nKyoto\na generation ship between stars\n";

/** Write the starter manifest (and the places file it reads); never overwrite unless forced. */
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
  return { written: [manifest, places] };
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
