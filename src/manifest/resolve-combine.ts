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
  return { mode, n: c.n, exclude, repeat: c.repeat ?? 1 };
}
