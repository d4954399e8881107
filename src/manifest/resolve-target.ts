import type { Diagnostic } from "../errors.js";
import type { RawManifest } from "./schema.js";
import type { YamlSource } from "./source.js";
import type { Target } from "./types.js";

/** Candidates tried by default before a build gives up short of `rows`: room for a 75% drop rate. */
export const DEFAULT_CANDIDATES_PER_ROW = 4;

export function resolveTarget(src: YamlSource, raw: RawManifest, errors: Diagnostic[]): Target | undefined {
  const t = raw.target;
  if (!t) return undefined;
  const before = errors.length;
  if (t.rows <= 0)
    errors.push(src.at(["target", "rows"], `target.rows must be at least 1, not ${t.rows}`, "how many rows the outputs should hold, e.g. rows: 500"));
  const max = t.max_candidates ?? t.rows * DEFAULT_CANDIDATES_PER_ROW;
  if (t.max_candidates !== undefined && t.max_candidates < t.rows)
    errors.push(
      src.at(
        ["target", "max_candidates"],
        `target.max_candidates (${t.max_candidates}) is below target.rows (${t.rows}): the target could never be reached`,
        `each candidate yields at most one row; set max_candidates: ${t.rows * DEFAULT_CANDIDATES_PER_ROW} or leave it out (default 4 × rows)`,
      ),
    );
  // Both would decide how many repeats each combination gets: target adds them as rows need.
  if (raw.combine?.repeat !== undefined)
    errors.push(
      src.at(
        ["combine", "repeat"],
        "combine.repeat and target: both decide how many repeats there are",
        "remove repeat: target adds repeats (each with its own nonce) until target.rows survive",
      ),
    );
  return errors.length > before ? undefined : { rows: t.rows, maxCandidates: max };
}
