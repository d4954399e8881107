import { access } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type Diagnostic, InterruptedError } from "../errors.js";
import { hash64, hash128 } from "../util/hash.js";
import { ImportGraphError, importGraph, show } from "./import-graph.js";
import { type FromModuleWorker, startModuleWorker } from "./module-thread.js";
import type { RawStep } from "./schema.js";
import type { YamlSource } from "./source.js";
import type { ManifestInputs } from "./types.js";

/** How long one call of a run module (and its first load) may take unless the step says. */
export const DEFAULT_RUN_TIMEOUT_S = 30;

export interface LoadedModule {
  /** What the worker imports. */
  url: string;
  /**
   * What the step's output can depend on besides its input: the module's source, the files it
   * imports (by path relative to the manifest) and the packages (name@version). A module that
   * imports nothing keeps the identity it had before imports were followed.
   */
  identity: { source: string; imports?: Record<string, string>; packages?: string[] };
}

type Checked = { ok: LoadedModule } | { error: Diagnostic };

/**
 * Check every run step's module, by path as written: it exists, its imports resolve, and it
 * loads with a default export function. It is loaded in a worker thread (module-thread.ts), as it
 * will be run, so that loading it cannot write to stdout, end the process or hang it. Problems
 * are positioned diagnostics, in step order.
 */
export async function loadRunModules(
  src: YamlSource,
  steps: RawStep[],
  dir: string,
  errors: Diagnostic[],
  inputs?: ManifestInputs,
  signal?: AbortSignal,
): Promise<Map<string, LoadedModule>> {
  const checks = new Map<string, Promise<Checked>>();
  for (const [i, step] of steps.entries()) {
    if (!step.run || checks.has(step.run.module)) continue;
    checks.set(step.run.module, check(src, ["steps", i, "run", "module"], step.run.module, step.run.timeout_s ?? DEFAULT_RUN_TIMEOUT_S, dir, inputs, signal));
  }
  const out = new Map<string, LoadedModule>();
  for (const [module, checked] of checks) {
    const c = await checked;
    if ("ok" in c) out.set(module, c.ok);
    else errors.push(c.error);
  }
  return out;
}

async function check(
  src: YamlSource,
  path: (string | number)[],
  module: string,
  timeoutS: number,
  dir: string,
  inputs: ManifestInputs | undefined,
  signal: AbortSignal | undefined,
): Promise<Checked> {
  const abs = resolve(dir, module);
  const fail = (message: string, hint?: string): Checked => ({ error: src.at(path, message, hint) });
  if (
    !(await access(abs).then(
      () => true,
      () => false,
    ))
  )
    return fail(`module not found: ${module}`, "the path is relative to the manifest's folder");
  if (!/\.(m?js)$/.test(abs))
    return fail(`${module} is not a JavaScript module`, "write the step as a .js or .mjs file with `export default function (vars) { ... }`");
  let graph: Awaited<ReturnType<typeof importGraph>>;
  try {
    graph = await importGraph(abs, dir);
  } catch (err) {
    if (!(err instanceof ImportGraphError)) throw err;
    return fail(`${module} failed to load: ${err.message}`);
  }
  const identity: LoadedModule["identity"] = { source: "" };
  for (const [file, text] of graph.files) {
    if (inputs) inputs.files[file] = hash64(text);
    if (file === abs) identity.source = hash128(text);
    else (identity.imports ??= {})[show(dir, file)] = hash128(text);
  }
  for (const [file, pkg] of graph.packages) {
    if (inputs) inputs.files[file] = hash64(pkg.text);
    (identity.packages ??= []).push(pkg.id);
  }
  identity.packages?.sort();
  const url = pathToFileURL(abs).href;
  const loaded = await loadInWorker(url, timeoutS, signal);
  if ("interrupted" in loaded) throw new InterruptedError("interrupted while loading the run modules");
  if ("gone" in loaded) return fail(`${module} ${loaded.gone}`);
  if ("exited" in loaded)
    return fail(
      `${module} called process.exit(${loaded.exited}) while loading`,
      "a run module exports a function and returns its text; it cannot end the build",
    );
  // Node's message for a syntax error names no file; the file the lexer could not read is it.
  if ("loadError" in loaded) return fail(`${module} failed to load: ${graph.unlexed.length ? `${graph.unlexed[0]}: ` : ""}${loaded.loadError}`);
  if (!("defaultType" in loaded) || loaded.defaultType !== "function")
    return fail(`${module} has no default export function`, "export default function (vars) { return text; }  // or { drop: 'why' }");
  if (graph.unlexed.length)
    return fail(
      `${module} loads, but the imports of ${graph.unlexed[0]} could not be read, so editing them would not rerun the step`,
      "please report this file to synthbuild; es-module-lexer could not parse it",
    );
  return { ok: { url, identity } };
}

type LoadResult = FromModuleWorker | { gone: string } | { interrupted: true };

/** Import the module in a thread of its own, for at most timeoutS; the thread ends either way. */
async function loadInWorker(url: string, timeoutS: number, signal: AbortSignal | undefined): Promise<LoadResult> {
  if (signal?.aborted) return { interrupted: true };
  const worker = startModuleWorker();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await new Promise<LoadResult>((done) => {
      // From when the thread runs, not from when it was asked for: a thread's start-up on a busy
      // machine is not the module's time.
      worker.once("online", () => {
        timer = setTimeout(() => done({ gone: `did not finish loading within ${timeoutS} s (run.timeout_s)` }), timeoutS * 1000);
      });
      onAbort = () => done({ interrupted: true });
      signal?.addEventListener("abort", onAbort, { once: true });
      worker.once("message", done);
      worker.once("error", (err) => done({ gone: `failed to load: ${err.message}` }));
      worker.once("exit", (code) => done({ gone: `ended its thread while loading (exit code ${code})` }));
      worker.postMessage({ kind: "load", id: 0, url });
    });
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener("abort", onAbort);
    await worker.terminate();
  }
}
