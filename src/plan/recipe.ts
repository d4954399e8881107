import type { Sample } from "../expand/sample.js";
import type { Dimension, DimValue, Manifest, Step } from "../manifest/types.js";
import { RENDER_VERSION } from "../template/engine.js";
import { hash64 } from "../util/hash.js";
import { KEY_VERSION } from "./request.js";

/**
 * The versions of everything that turns a definition into a request: in every recipe, so that a
 * tool upgrade that changes keys or rendering is never mistaken for "nothing changed".
 */
export const RECIPE_VERSIONS = `key:${KEY_VERSION}:render:${RENDER_VERSION}`;

/**
 * A step's recipe: everything its output is a function of, named by hashes — its definition, and
 * the value of each name it reads (a dimension's text, an upstream step's output hash, the nonce's
 * seed and sample id). Two runs with the same recipe send the same request, so when a step's
 * recipe matches the lock, the lock already says what its request and answer were: a no-op build
 * can be decided without rendering a template or opening a cache entry.
 */
export function stepRecipe(m: Manifest, step: Step, sample: Sample, outs: OutLookup, offline: boolean): string {
  if (step.kind === "dedupe") return dedupeRecipe(step);
  if (step.kind === "generate") {
    // parts.join("\u0000") written out, each read name's input by a reader made once per step:
    // this runs once per sample and step, a million times for a million samples.
    let text = `${RECIPE_VERSIONS}\u0000${step.defHash}\u0000${offline ? "offline" : "online"}`;
    for (const [name, read] of readersOf(m, step)) text += `\u0000${name}\u0000${read(sample, outs)}`;
    // A reroll is a change of this step's request (its key), whether or not it reads the nonce;
    // appended only from attempt 1, so recipes of samples never rerolled stay as they were.
    const n = sample.attempts?.[step.id];
    if (n) text += `\u0000attempt\u0000${n}`;
    return hash64(text);
  }
  const parts: string[] = [RECIPE_VERSIONS, step.defHash];
  if (step.kind === "run") {
    // A module can read anything it is given: every dimension and every earlier output.
    for (const d of m.dimensions) parts.push(d.name, input(m, sample, d.name, outs, step.id));
    for (const s of m.steps.slice(0, step.index)) parts.push(s.id, input(m, sample, s.id, outs, step.id));
    parts.push(`${m.seed}:${sample.id}:${sample.repeat}`);
  } else if (step.kind === "filter") {
    // field first, as before `where` existed, so a filter without one keeps its recipe.
    const names = new Set([...(step.field === undefined ? [] : [step.field]), ...(step.where?.names ?? [])]);
    for (const name of names) parts.push(name, input(m, sample, name, outs, step.id));
  } else {
    parts.push(step.field, input(m, sample, step.field, outs, step.id));
  }
  return hash64(parts.join("\u0000"));
}

const dedupeRecipes = new WeakMap<Step, string>();
/** A dataset-level step's recipe: its definition alone (what it reads is in the recipes before it). */
export function dedupeRecipe(step: Step): string {
  let r = dedupeRecipes.get(step);
  if (!r) dedupeRecipes.set(step, (r = hash64(`${RECIPE_VERSIONS}\u0000${step.defHash}`)));
  return r;
}

const reads = new WeakMap<Step, string[]>();
function readsOf(step: Step & { kind: "generate" }): string[] {
  let r = reads.get(step);
  if (!r) {
    r = [...new Set(step.messages.flatMap((msg) => msg.template.reads))].sort();
    reads.set(step, r);
  }
  return r;
}

type Reader = (sample: Sample, outs: OutLookup) => string;
const readers = new WeakMap<Step, { m: Manifest; list: [string, Reader][] }>();

/** What input() gives for each name a generate step reads, resolved to a function once. */
function readersOf(m: Manifest, step: Step & { kind: "generate" }): [string, Reader][] {
  const cached = readers.get(step);
  if (cached?.m === m) return cached.list;
  const list = readsOf(step).map((name): [string, Reader] => {
    const di = m.dimensions.findIndex((d) => d.name === name);
    if (name !== "nonce" && name !== "index" && name !== "id" && di >= 0) return [name, (s) => textHash(s.values[di]!)];
    return [name, (s, outs) => input(m, s, name, outs, step.id)];
  });
  readers.set(step, { m, list });
  return list;
}

const dimIndexes = new WeakMap<Manifest, Map<string, number>>();
const textHashes = new WeakMap<DimValue, string>();

/** The output hash of an earlier step of the same sample. */
export type OutLookup = (stepId: string) => string | undefined;

function input(m: Manifest, sample: Sample, name: string, outs: OutLookup, stepId: string): string {
  switch (name) {
    case "nonce":
      return `${m.seed}:${sample.id}:${stepId}`;
    case "index":
      return String(sample.repeat);
    case "id":
      return sample.id;
  }
  let idx = dimIndexes.get(m);
  if (!idx) dimIndexes.set(m, (idx = new Map(m.dimensions.map((d, i) => [d.name, i]))));
  const di = idx.get(name) ?? (name.endsWith("_name") ? idx.get(name.slice(0, -5)) : undefined);
  if (di !== undefined) {
    const v = sample.values[di]!;
    if (name !== m.dimensions[di]!.name) return `name:${v.name ?? ""}`;
    return textHash(v);
  }
  return `out:${outs(name) ?? "?"}`;
}

/**
 * Hash of the texts of a sample's values whose key is not their text (see LockSample.texts): glob
 * values (keyed by path) and rows keyed by a column; undefined when it has none.
 */
export function globTexts(m: Manifest, sample: Sample): string | undefined {
  let parts: string[] | undefined;
  m.dimensions.forEach((d, i) => {
    if (keyedApart(d)) (parts ??= []).push(d.name, textHash(sample.values[i]!));
  });
  return parts ? hash64(parts.join("\u0000")) : undefined;
}

/** A dimension whose values keep their key (so their sample ids) when their text is edited. */
export function keyedApart(d: Dimension): boolean {
  return d.kind === "glob" || d.keyColumn !== undefined;
}

function textHash(v: DimValue): string {
  let h = textHashes.get(v);
  if (!h) textHashes.set(v, (h = hash64(v.text)));
  return h;
}
