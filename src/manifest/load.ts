import { readFile } from "node:fs/promises";
import { basename, dirname, extname, relative, resolve } from "node:path";
import { type Diagnostic, ManifestError, ManifestSyntaxError, UsageError } from "../errors.js";
import { hash64, initHashing } from "../util/hash.js";
import { loadJsonSchemaSupport } from "../util/json-schema.js";
import { interpolateEnv } from "./interpolate.js";
import { resolveCache } from "./resolve-cache.js";
import { resolveCombine } from "./resolve-combine.js";
import { resolveDimensions } from "./resolve-dimensions.js";
import { resolveOutputs } from "./resolve-outputs.js";
import { baseNames, resolveSteps, valueStepIds } from "./resolve-steps.js";
import { loadRunModules } from "./run-modules.js";
import { YamlSource } from "./source.js";
import type { Manifest, ManifestInputs } from "./types.js";
import { validateSchema } from "./validate.js";

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Read, interpolate, validate and resolve a manifest. Every problem found is reported at once,
 * each with a position; nothing is written.
 */
export async function loadManifest(file: string, opts: LoadOptions = {}): Promise<Manifest> {
  await initHashing();
  const cwd = opts.cwd ?? process.cwd();
  const abs = resolve(cwd, file);
  let text: string;
  try {
    text = await readFile(abs, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UsageError(`no manifest at ${file}`, "run `synthbuild init` to write a starter dataset.yaml, or pass -f PATH");
    throw new UsageError(`cannot read ${file}: ${code}`);
  }
  return parseManifest(relative(cwd, abs) || abs, abs, text, opts.env ?? process.env);
}

export async function parseManifest(displayName: string, abs: string, text: string, env: NodeJS.ProcessEnv): Promise<Manifest> {
  await initHashing();
  const src = YamlSource.parse(displayName, text);
  const syntax = src.syntaxDiagnostics();
  if (syntax.length) throw new ManifestSyntaxError(syntax);
  if (src.doc.contents === null)
    throw new ManifestError([src.diagnostic(1, 1, "", "the manifest is empty", "run `synthbuild init` for a starter dataset.yaml")]);

  const inputs: ManifestInputs = { files: { [abs]: hash64(text) }, globs: [], env: new Set(), modules: [] };
  const errors: Diagnostic[] = interpolateEnv(src, env, inputs.env);
  let data: unknown;
  try {
    data = src.doc.toJS({ maxAliasCount: 1000 });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    throw new ManifestError([src.aliasDiagnostic(err.message)]);
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) {
    throw new ManifestError([
      src.diagnostic(1, 1, "", "the manifest must be a mapping of keys (version, name, dimensions, steps, output)", "see `synthbuild init` for an example"),
    ]);
  }
  const { manifest: raw, errors: schemaErrors } = validateSchema(src, data);
  errors.push(...schemaErrors);
  if (!raw) throw new ManifestError(errors);

  const dir = dirname(abs);
  if (raw.steps?.some((s) => s.generate?.json_schema)) await loadJsonSchemaSupport();
  const dimensions = await resolveDimensions(src, raw.dimensions, dir, errors, inputs);
  const combine = resolveCombine(src, raw.combine, dimensions, errors);
  const modules = await loadRunModules(src, raw.steps ?? [], dir, errors, inputs);
  const steps = resolveSteps(src, raw.steps ?? [], raw.model, raw.dimensions, modules, errors);
  const readable = new Set([...baseNames(raw.dimensions), ...valueStepIds(raw.steps ?? [])]);
  const stem = basename(abs, extname(abs));
  const protectedPaths = new Map<string, string>([
    [abs, "the manifest"],
    [resolve(dir, `${stem}.lock`), "the lock file"],
  ]);
  for (const [name, spec] of Object.entries(raw.dimensions))
    if (!Array.isArray(spec) && "file" in spec) protectedPaths.set(resolve(dir, spec.file), `the values file of dimension ${name}`);
  const outputs = resolveOutputs(src, raw.output, dir, readable, protectedPaths, errors);
  if (errors.length) throw new ManifestError(errors);
  const cache = raw.cache && resolveCache(raw.cache, dir);
  return { file: abs, dir, name: raw.name, seed: raw.seed ?? 0, dimensions, combine, steps, outputs, inputs, ...(cache && { cache }) };
}
