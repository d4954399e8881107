import { RequestError } from "../providers/types.js";
import { compileJsonSchema } from "../util/json-schema.js";

/**
 * Structured output: an answer that is not JSON, or not valid against the schema, fails the
 * request and is never cached. Retryable for a real model (at temperature > 0 the next answer
 * may be fine), not for the deterministic offline one.
 */
export function validateJsonAnswer(text: string, schema: Record<string, unknown>, retryable = true): void {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new RequestError(`answer is not JSON: ${text.slice(0, 60)}${text.length > 60 ? "…" : ""}`, retryable);
  }
  const validate = compileJsonSchema(schema);
  if (!validate(value)) {
    const e = validate.errors?.[0];
    throw new RequestError(`answer does not match json_schema: ${e ? `${e.instancePath || "/"} ${e.message}` : "invalid"}`, retryable);
  }
}
