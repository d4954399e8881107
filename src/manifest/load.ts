import { readFile } from "node:fs/promises";
import { basename, dirname, extname, join, relative, resolve } from "node:path";
import { type Diagnostic, ManifestError, ManifestSyntaxError, UsageError } from "../errors.js";
import { hash64, initHashing } from "../util/hash.js";
import { loadJsonSchemaSupport } from "../util/json-schema.js";
import { byteName, decodeUtf8 } from "../util/utf8.js";
import { resolveRoots } from "./confine.js";
import { interpolateEnv } from "./interpolate.js";
import { checkOutputCollisions, protectedFiles } from "./output-collisions.js";
import { resolveCache } from "./resolve-cache.js";
import { resolveCombine } from "./resolve-combine.js";
import { resolveDimensions } from "./resolve-dimensions.js";
import { resolveOutputs } from "./resolve-outputs.js";
import { baseNames, resolveSteps, valueStepIds } from "./resolve-steps.js";
import { resolveTarget } from "./resolve-target.js";
import { loadRunModules } from "./run-modules.js";
import type { RawManifest } from "./schema.js";
import { YamlSource } from "./source.js";
import type { Fields } from "./template-check.js";
import type { Dimension, Manifest, ManifestInputs } from "./types.js";
import { validateSchema } from "./validate.js";

export interface LoadOptions {
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** Ctrl-C: loading a run module (in a worker) is abandoned at once. */
  signal?: AbortSignal;
  /** Where the cache will be (default cache/ beside the manifest): no output may write into it. */
  cacheDir?: string;
}

/**
 * Read, interpolate, validate and resolve a manifest. Every problem found is reported at once,
 * each with a position; nothing is written.
 */
export async function loadManifest(file: string, opts: LoadOptions = {}): Promise<Manifest> {
  await initHashing();
  const cwd = opts.cwd ?? process.cwd();
  const abs = resolve(cwd, file);
  let bytes: Buffer;
  try {
    bytes = await readFile(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UsageError(`no manifest at ${file}`, "run `synthbuild init` to write a starter dataset.yaml, or pass -f PATH");
    if (code === "EISDIR") throw new UsageError(`${file} is a folder, not a manifest`, `pass the manifest itself: -f ${join(file, "dataset.yaml")}`);
    throw new UsageError(`cannot read ${file}: ${code}`, "check that it is a file you may read");
  }
  const display = relative(cwd, abs) || abs;
  const decoded = decodeUtf8(bytes);
  if ("notUtf8" in decoded) {
    const { line, col, byte } = decoded.notUtf8;
    const src = YamlSource.parse(display, bytes.toString("utf8"));
    throw new ManifestError([
      src.diagnostic(line, col, "", `the manifest is not UTF-8 text: ${byteName(byte)} here`, "save it as UTF-8 (e.g. iconv -f latin1 -t utf-8)"),
    ]);
  }
  return parseManifest(display, abs, decoded.text, opts.env ?? process.env, opts);
}

/** What templates may read of each rows dimension. */
function rowFields(raw: RawManifest["dimensions"], dims: Dimension[]): Map<string, Fields> {
  const fields = new Map<string, Fields>();
  for (const [name, spec] of Object.entries(raw)) {
    if (Array.isArray(spec) || !("rows" in spec)) continue;
    const d = dims.find((x) => x.name === name);
    fields.set(
      name,
      d?.columns ? { kind: "rows", file: d.file!, columns: d.columns, rows: d.values.map((v) => v.row!), lines: d.rowLines! } : { kind: "unread" },
    );
  }
  return fields;
}

export async function parseManifest(
  displayName: string,
  abs: string,
  text: string,
  env: NodeJS.ProcessEnv,
  opts: Pick<LoadOptions, "cacheDir" | "signal"> = {},
): Promise<Manifest> {
  await initHashing();
  const src = YamlSource.parse(displayName, text);
  const syntax = src.syntaxDiagnostics();
  if (syntax.length) throw new ManifestSyntaxError(syntax);
  if (src.doc.contents === null)
    throw new ManifestError([src.diagnostic(1, 1, "", "the manifest is empty", "run `synthbuild init` for a starter dataset.yaml")]);

  const inputs: ManifestInputs = { files: { [abs]: hash64(text) }, globs: [], env: new Set() };
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
  // A value whose ${VAR} could not be filled in is not what the author wrote: its error says why.
  errors.push(...schemaErrors.filter((d) => !errors.some((e) => e.path === d.path)));
  if (!raw) throw new ManifestError(errors);

  const dir = dirname(abs);
  // Run modules are checked in worker threads, whose start-up overlaps reading the values files.
  const moduleErrors: Diagnostic[] = [];
  const modulesLoaded = loadRunModules(src, raw.steps ?? [], dir, moduleErrors, inputs, opts.signal);
  modulesLoaded.catch(() => {}); // awaited below, unless something before throws
  if (raw.steps?.some((s) => s.generate?.json_schema)) await loadJsonSchemaSupport();
  const roots = await resolveRoots(src, raw.shared_data, dir, errors);
  const dimensions = await resolveDimensions(src, raw.dimensions, dir, roots, errors, inputs);
  const combine = resolveCombine(src, raw.combine, dimensions, errors, new Set(Object.keys(raw.dimensions ?? {})));
  const target = resolveTarget(src, raw, errors);
  const modules = await modulesLoaded;
  errors.push(...moduleErrors);
  const fields = rowFields(raw.dimensions, dimensions);
  const fieldReads = new Set<string>();
  const resolved = resolveSteps(src, raw.steps ?? [], raw.model, raw.dimensions, modules, errors, fields, fieldReads);
  const readable = new Set([...baseNames(raw.dimensions), ...valueStepIds(raw.steps ?? [])]);
  const outputs = resolveOutputs(src, raw.output, dir, readable, Object.keys(raw.dimensions), errors, fields, fieldReads);
  const steps = resolved.map((s) => (s.kind === "generate" && s.jsonSchema && fieldReads.has(s.id) ? { ...s, parseAnswer: true as const } : s));
  const lock = resolve(dir, `${basename(abs, extname(abs))}.lock`);
  const cacheFolder = opts.cacheDir ?? resolve(dir, "cache");
  const owned = new Map([
    [cacheFolder, `${relative(dir, cacheFolder) || "."}/, the cache folder`],
    [resolve(dir, ".git"), ".git/, git's folder"],
  ]);
  await checkOutputCollisions(src, raw.output, dir, await protectedFiles(raw, abs, lock, inputs), owned, errors);
  if (errors.length) throw new ManifestError(errors);
  const cache = raw.cache && resolveCache(raw.cache, dir);
  return {
    file: abs,
    dir,
    name: raw.name,
    seed: raw.seed ?? 0,
    dimensions,
    combine,
    steps,
    outputs,
    inputs,
    ...(target && { target }),
    ...(cache && { cache }),
    ...(raw.card?.license !== undefined && { card: { license: raw.card.license } }),
  };
}
