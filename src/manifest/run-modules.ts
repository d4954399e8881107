import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Diagnostic } from "../errors.js";
import { hash64, hash128 } from "../util/hash.js";
import type { RawStep } from "./schema.js";
import type { YamlSource } from "./source.js";
import type { ManifestInputs, RunFunction } from "./types.js";

export interface LoadedModule {
  fn: RunFunction;
  /** Hash of the module's own source: editing it reruns the step. Its imports are not followed. */
  sourceHash: string;
}

/** Import every run step's module, by path as written; problems are positioned diagnostics. */
export async function loadRunModules(
  src: YamlSource,
  steps: RawStep[],
  dir: string,
  errors: Diagnostic[],
  inputs?: ManifestInputs,
): Promise<Map<string, LoadedModule>> {
  const out = new Map<string, LoadedModule>();
  for (const [i, step] of steps.entries()) {
    if (!step.run || out.has(step.run.module)) continue;
    const path = ["steps", i, "run", "module"];
    const abs = resolve(dir, step.run.module);
    let source: string;
    try {
      source = await readFile(abs, "utf8");
      if (inputs) inputs.files[abs] = hash64(source);
    } catch {
      errors.push(src.at(path, `module not found: ${step.run.module}`, "the path is relative to the manifest's folder"));
      continue;
    }
    if (!/\.(m?js)$/.test(abs)) {
      errors.push(
        src.at(path, `${step.run.module} is not a JavaScript module`, "write the step as a .js or .mjs file with `export default function (vars) { ... }`"),
      );
      continue;
    }
    let mod: { default?: unknown };
    try {
      // The source hash in the URL: a long-lived process (the library API) sees an edited module.
      const url = `${pathToFileURL(abs).href}?v=${hash128(source)}`;
      inputs?.modules.push(url);
      mod = (await import(url)) as { default?: unknown };
    } catch (err) {
      errors.push(src.at(path, `${step.run.module} failed to load: ${(err as Error).message}`));
      continue;
    }
    if (typeof mod.default !== "function") {
      errors.push(src.at(path, `${step.run.module} has no default export function`, "export default function (vars) { return text; }  // or { drop: 'why' }"));
      continue;
    }
    out.set(step.run.module, { fn: mod.default as RunFunction, sourceHash: hash128(source) });
  }
  return out;
}
