import { Ajv, type ValidateFunction } from "ajv";
import { canonicalJson } from "./canonical-json.js";

const ajv = new Ajv({ allErrors: false, strict: false });
const compiled = new Map<string, ValidateFunction>();

/** Compile (once) a JSON Schema; throws with ajv's message if the schema itself is invalid. */
export function compileJsonSchema(schema: Record<string, unknown>): ValidateFunction {
  const id = canonicalJson(schema);
  let v = compiled.get(id);
  if (!v) compiled.set(id, (v = ajv.compile(schema)));
  return v;
}
