import type { Diagnostic } from "../errors.js";
import { suggestion } from "../util/did-you-mean.js";
import type { RawManifest } from "./schema.js";
import type { YamlSource } from "./source.js";
import type { Combine, Dimension, Match } from "./types.js";

/**
 * `declared`: every dimension the manifest names, loaded or not: one whose values file failed to
 * load has its own error, and an exclude naming it is not a second, misleading one.
 */
export function resolveCombine(
  src: YamlSource,
  raw: RawManifest["combine"],
  dims: Dimension[],
  errors: Diagnostic[],
  declared: ReadonlySet<string> = new Set(dims.map((d) => d.name)),
): Combine {
  const c = raw ?? {};
  const mode = c.mode ?? "product";
  if (mode === "sample" && c.n === undefined) errors.push(src.at(["combine"], "mode sample needs n:", "n is how many combinations to draw, e.g. n: 2000"));
  if (mode !== "sample" && c.n !== undefined)
    errors.push(src.at(["combine", "n"], `n: is for mode sample, not ${mode}`, "set mode: sample to draw n combinations"));
  if (mode === "zip") {
    const conditional = dims.find((d) => d.kind === "conditional");
    if (conditional)
      errors.push(
        src.at(
          ["dimensions", conditional.name],
          "mode zip cannot use a conditional dimension",
          "zip pairs the i-th values of every list; use mode product for by:",
        ),
      );
    const lengths = new Set(dims.map((d) => d.values.length));
    if (lengths.size > 1)
      errors.push(
        src.at(
          ["combine", "mode"],
          `mode zip needs lists of one length; these have ${dims.map((d) => `${d.name}: ${d.values.length}`).join(", ")}`,
          "make the lists equally long, or use product",
        ),
      );
  }
  const byName = new Map(dims.map((d) => [d.name, d]));
  const exclude: Match[] = [];
  (c.exclude ?? []).forEach((m, i) => {
    const match = new Map<string, Set<string>>();
    for (const [name, v] of Object.entries(m)) {
      const dim = byName.get(name);
      if (!dim && declared.has(name)) continue;
      if (!dim) {
        errors.push(
          src.at(
            ["combine", "exclude", i, name],
            `exclude names an unknown dimension '${name}'`,
            suggestion(name, byName.keys()) ?? `dimensions: ${[...byName.keys()].join(", ")}`,
            { key: true },
          ),
        );
        continue;
      }
      const wanted = (Array.isArray(v) ? v : [v]).map(String);
      const known = new Set(dim.values.map((x) => x.key));
      for (const w of wanted) {
        if (!known.has(w))
          errors.push(
            src.at(
              ["combine", "exclude", i, name],
              `'${w}' is not a value of ${name}, so this excludes nothing`,
              suggestion(w, known) ?? `values of ${name}: ${[...known].slice(0, 8).join(", ")}${known.size > 8 ? ", ..." : ""}`,
            ),
          );
      }
      match.set(name, new Set(wanted));
    }
    if (Object.keys(m).length === 0)
      errors.push(src.at(["combine", "exclude", i], "an empty exclude matches every combination", "name at least one dimension, e.g. { genre: romance }"));
    exclude.push(match);
  });
  const repeat = c.repeat ?? 1;
  const space = spaceSize(dims);
  const method =
    (mode === "sample" && space > ENUMERATE_LIMITS.sample) || (mode === "pairwise" && space > ENUMERATE_LIMITS.pairwise) ? "construct" : "enumerate";
  const refusal = tooLarge(mode, method, space, repeat, c.n ?? 0, dims);
  if (refusal) errors.push(src.at(raw ? ["combine"] : ["dimensions"], refusal.message, refusal.hint));
  return { mode, n: c.n, exclude, repeat, method };
}

/**
 * Up to these sizes, sample and pairwise walk the product, as they always have: the samples of
 * every manifest valid before they could do otherwise stay exactly as they were. Past them,
 * they construct (draw per candidate; IPOG), which costs what they keep, not the space.
 */
export const ENUMERATE_LIMITS = { sample: 50_000_000, pairwise: 2_000_000 } as const;

/** Samples a build can hold and plan (a product's, or what a sample draws). */
const SAMPLES_LIMIT = 10_000_000;
/**
 * Value pairs a pairwise array built by IPOG may have to cover: its work grows with pairs ×
 * rows, and its rows with the two largest lists' product. 30 × 30 has 391,500.
 */
const PAIRS_LIMIT = 2_000_000;

/**
 * Past these, a build would spend minutes of CPU (or run out of memory) before its first
 * request; refusing at load says so at once, with the size and what to do instead.
 */
function tooLarge(
  mode: Combine["mode"],
  method: Combine["method"],
  space: number,
  repeat: number,
  n: number,
  dims: readonly Dimension[],
): { message: string; hint: string } | undefined {
  if (mode === "product" && space * repeat > SAMPLES_LIMIT)
    return {
      message: `product makes ${fmtCount(space * repeat)} samples (before excludes): more than ${fmtCount(SAMPLES_LIMIT)}`,
      hint: "draw some of them: mode: sample with n: (or mode: pairwise)",
    };
  if (mode === "sample" && method === "construct" && n * repeat > SAMPLES_LIMIT)
    return {
      message: `combine: sample draws ${fmtCount(n * repeat)} samples (n × repeat) from ${fmtCount(space)} combinations: more than ${fmtCount(SAMPLES_LIMIT)}`,
      hint: "lower n (or repeat)",
    };
  if (mode === "pairwise" && method === "construct") {
    const pairs = valuePairs(dims);
    if (pairs > PAIRS_LIMIT)
      return {
        message: `pairwise over ${fmtCount(space)} combinations has ${fmtCount(pairs)} value pairs to cover: more than ${fmtCount(PAIRS_LIMIT)}`,
        hint: "fewer values or dimensions, or mode: sample with n:",
      };
  }
  return undefined;
}

/** Pairs of values of two different dimensions (a conditional's whole list counted): what pairwise must cover, at most. */
function valuePairs(dims: readonly Dimension[]): number {
  let sum = 0;
  let squares = 0;
  for (const d of dims) {
    sum += d.values.length;
    squares += d.values.length ** 2;
  }
  return (sum * sum - squares) / 2;
}

/**
 * How many combinations the dimensions make, excludes aside: exact with conditional dimensions
 * (which multiply by their parent value's own list), by counting per value of the parents only.
 */
export function spaceSize(dims: readonly Dimension[]): number {
  // Last position at which each parent is still needed: after it, its value is forgotten and
  // states that differed only there merge, so the states stay few (one per open parent value).
  const lastUse = new Map<string, number>();
  dims.forEach((d, i) => {
    if (d.by) lastUse.set(d.by, i);
  });
  let states = new Map<string, { at: Map<string, string>; count: number }>([["", { at: new Map(), count: 1 }]]);
  dims.forEach((d, i) => {
    const next = new Map<string, { at: Map<string, string>; count: number }>();
    const add = (at: Map<string, string>, count: number) => {
      for (const [p] of at) if ((lastUse.get(p) ?? -1) <= i) at.delete(p);
      const key = JSON.stringify([...at].sort());
      const st = next.get(key);
      if (st) st.count += count;
      else next.set(key, { at, count });
    };
    for (const st of states.values()) {
      const list = d.by && d.byValue ? (d.byValue.get(st.at.get(d.by)!) ?? []) : d.values;
      if ((lastUse.get(d.name) ?? -1) > i) for (const v of list) add(new Map(st.at).set(d.name, v.key), st.count);
      else if (list.length) add(new Map(st.at), st.count * list.length);
    }
    states = next;
  });
  return [...states.values()].reduce((n, x) => n + x.count, 0);
}

function fmtCount(n: number): string {
  return n >= 1e6 ? `${n.toExponential(1).replace(/e\+(\d+)/, " × 10^$1")}` : n.toLocaleString("en-US");
}
