import type { Sample } from "../expand/sample.js";
import type { DimValue, Manifest } from "../manifest/types.js";
import { Structured } from "../template/structured.js";
import { deterministicUuid } from "../util/uuid.js";

/** The template variables of a sample before any step: its values, id, index (the repeat) and glob names. */
export function baseScope(m: Manifest, sample: Sample): Record<string, unknown> {
  const scope: Record<string, unknown> = { id: sample.id, index: sample.repeat };
  m.dimensions.forEach((d, i) => {
    const v = sample.values[i]!;
    scope[d.name] = v.row ? rowValue(v) : v.text;
    if (d.kind === "glob") scope[`${d.name}_name`] = v.name;
  });
  return scope;
}

/**
 * `{{ nonce }}`: a UUID per (seed, sample, step): entropy for the model, reproducible for us. A
 * rerolled step's attempt n is appended only when n ≥ 1, so a nonce never rerolled is the one it
 * always was (test/unit/identity-golden.test.ts).
 */
export function nonceFor(m: Manifest, sample: Sample, stepId: string): string {
  const n = sample.attempts?.[stepId];
  return deterministicUuid(n ? `nonce:${m.seed}:${sample.id}:${stepId}:${n}` : `nonce:${m.seed}:${sample.id}:${stepId}`);
}

const rowValues = new WeakMap<DimValue, Structured>();
/** One per row, not per sample: a row's fields are wrapped for Liquid once. */
function rowValue(v: DimValue): Structured {
  let s = rowValues.get(v);
  if (!s) rowValues.set(v, (s = new Structured(v.text, v.row, "row")));
  return s;
}
