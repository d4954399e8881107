import { realpath } from "node:fs/promises";
import { basename, dirname, join, relative, resolve, sep } from "node:path";
import type { Diagnostic } from "../errors.js";
import { fractionsOf, outputTargets } from "./output-targets.js";
import type { RawManifest } from "./schema.js";
import type { YamlSource } from "./source.js";
import type { ManifestInputs } from "./types.js";

/** Files no output may write: absolute path (as read, and as its real path) → what to call it. */
type Protected = Map<string, string>;

/**
 * Everything the build read (the manifest, values files, globbed files, run modules) or owns (the
 * lock), with what to call each, so that an output's name can be checked against them.
 */
export async function protectedFiles(raw: RawManifest, manifest: string, lock: string, inputs: ManifestInputs): Promise<Protected> {
  const dir = dirname(manifest);
  const named: [string, string][] = [
    [manifest, "the manifest"],
    [lock, "the lock file"],
  ];
  for (const [name, spec] of Object.entries(raw.dimensions)) {
    if (Array.isArray(spec)) continue;
    if ("file" in spec) named.push([resolve(dir, spec.file), `the values file of dimension ${name}`]);
    if ("rows" in spec) named.push([resolve(dir, spec.rows), `the rows file of dimension ${name}`]);
    if ("glob" in spec)
      for (const f of inputs.globs.find((g) => g.pattern === spec.glob)?.matches ?? []) named.push([resolve(dir, f), `a file glob dimension ${name} reads`]);
  }
  for (const s of raw.steps ?? []) if (s.run) named.push([resolve(dir, s.run.module), `the run module of step ${s.id}`]);
  const out: Protected = new Map();
  for (const [abs, what] of named) {
    if (!out.has(abs)) out.set(abs, what);
    const real = await realpath(abs).catch(() => undefined);
    if (real && !out.has(real)) out.set(real, what);
  }
  return out;
}

/** Where a write to `abs` lands: through any link in the folders above it. */
async function landing(abs: string): Promise<string> {
  const parent = await realpath(dirname(abs)).catch(() => undefined);
  return parent ? join(parent, basename(abs)) : abs;
}

const inside = (path: string, folder: string) => path === folder || path.startsWith(folder + sep);

/**
 * Every file an output will write (each split, and for `format: files` the two folders it fills and
 * prunes) is checked, before anything is written or requested, against what the build reads and
 * owns: `split: {yaml: .5, lock: .5}` on `path: dataset` must not replace dataset.yaml with rows.
 */
export async function checkOutputCollisions(
  src: YamlSource,
  raw: RawManifest["output"],
  dir: string,
  files: Protected,
  folders: ReadonlyMap<string, string>,
  errors: Diagnostic[],
): Promise<void> {
  const list = Array.isArray(raw) ? raw : [raw];
  for (const [i, o] of list.entries()) {
    const at = Array.isArray(raw) ? ["output", i, "path"] : ["output", "path"];
    const abs = resolve(dir, o.path);
    const rel = relative(dir, abs);
    const format = o.format ?? "openai-chat";
    if ((rel === "" && format !== "files") || rel.startsWith("..")) continue; // reported with the output's other errors
    for (const t of outputTargets({ path: o.path, absPath: abs, format, split: fractionsOf(o.split) })) {
      const writes = t.split === undefined ? `output path ${o.path}` : `split ${t.split} of output ${o.path} would write ${relative(dir, t.abs)}, which`;
      const real = await landing(t.abs);
      const via = real === t.abs ? "" : ` (through a link, ${real})`;
      // `files` at the project root writes no file there, but fills two folders that must not be the cache's.
      const fills = format === "files" ? ["prompts", "completions"].flatMap((sub) => [join(t.abs, sub), join(real, sub)]) : [t.abs, real];
      for (const [folder, what] of folders) {
        if (fills.some((f) => inside(f, folder))) {
          errors.push(src.at(at, `${writes} is inside ${what}${via}`, "write outputs under dist/"));
          break;
        }
      }
      if (format === "files") {
        for (const sub of ["prompts", "completions"]) {
          const into = [join(t.abs, sub), join(real, sub)];
          for (const [file, what] of files)
            if (into.includes(dirname(file))) {
              errors.push(
                src.at(
                  at,
                  `output ${o.path}${t.split === undefined ? "" : ` (split ${t.split})`} writes into ${relative(dir, into[0]!)}/, where ${relative(dir, file)} is ${what}`,
                  "write outputs under dist/",
                ),
              );
              break;
            }
        }
        continue;
      }
      const what = files.get(t.abs) ?? files.get(real);
      if (what) errors.push(src.at(at, `${writes} is ${what}${via}: the build would overwrite it`, "write outputs under dist/"));
    }
  }
}
