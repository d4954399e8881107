import type { Diagnostic } from "../errors.js";
import { suggestion } from "../util/did-you-mean.js";
import type { RawManifest } from "./schema.js";
import type { YamlSource } from "./source.js";
import type { Combine, Dimension, Match } from "./types.js";

export function resolveCombine(src: YamlSource, raw: RawManifest["combine"], dims: Dimension[], errors: Diagnostic[]): Combine {
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
  const limit = SPACE_LIMITS[mode];
  if (limit !== undefined && space * (mode === "product" ? repeat : 1) > limit) {
    const size = fmtCount(space * (mode === "product" ? repeat : 1));
    errors.push(
      src.at(
        raw ? ["combine"] : ["dimensions"],
        mode === "product"
          ? `product makes ${size} samples (before excludes): more than ${fmtCount(limit)}`
          : mode === "sample"
            ? `combine: sample draws from ${size} combinations (before excludes), each hashed in turn: more than ${fmtCount(limit)}, which takes minutes`
            : `pairwise is built from all ${size} combinations (before excludes): more than ${fmtCount(limit)}`,
        mode === "product"
          ? "draw some of them: mode: sample with n: (or mode: pairwise)"
          : mode === "sample"
            ? "fewer values or dimensions: drawing from a space this large is not supported yet"
            : "use mode: sample with n:, or fewer values",
      ),
    );
  }
  return { mode, n: c.n, exclude, repeat };
}

/**
 * Past these, a build would spend minutes of CPU (or run out of memory) before its first
 * request; refusing at load says so at once, with the size. Sampling streams through the space
 * in memory for n only (about 7 µs a combination), pairwise holds the whole product.
 */
const SPACE_LIMITS: Partial<Record<Combine["mode"], number>> = { product: 10_000_000, sample: 50_000_000, pairwise: 2_000_000 };

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
