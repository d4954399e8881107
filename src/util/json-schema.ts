import type { ValidateFunction } from "ajv";
import { canonicalJson } from "./canonical-json.js";

type AjvInstance = { compile(schema: Record<string, unknown>): ValidateFunction };
let ajv: AjvInstance | undefined;
const compiled = new Map<string, ValidateFunction>();

/** Load ajv (only manifests with a json_schema pay its start-up). */
export async function loadJsonSchemaSupport(): Promise<void> {
  if (ajv) return;
  const mod = await import("ajv");
  // Node gives a CommonJS module's named exports; the CLI bundle's split chunk only its default.
  const Ajv = mod.Ajv ?? (mod.default as unknown as typeof mod.Ajv);
  ajv = new Ajv({ allErrors: false, strict: false });
}

/** Compile (once) a JSON Schema; throws with ajv's message if the schema itself is invalid. */
export function compileJsonSchema(schema: Record<string, unknown>): ValidateFunction {
  if (!ajv) throw new Error("loadJsonSchemaSupport() must be awaited first");
  const id = canonicalJson(schema);
  let v = compiled.get(id);
  if (!v) compiled.set(id, (v = ajv.compile(schema)));
  return v;
}
