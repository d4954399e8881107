import { UsageError } from "../errors.js";
import type { Sample } from "../expand/sample.js";
import type { Manifest } from "../manifest/types.js";

/** The one sample an id, or a unique prefix of one, names; a usage error naming the candidates otherwise. */
export function findSample(m: Manifest, samples: readonly Sample[], id: string): Sample {
  if (!/^[0-9a-f]{1,16}$/.test(id))
    throw new UsageError(
      `'${id}' is not a sample id`,
      "ids are 16 hex digits (a unique prefix will do); dataset.lock and `synthbuild plan --explain` list them",
    );
  const matches = samples.filter((s) => s.id.startsWith(id));
  if (matches.length === 0) throw new UsageError(`no sample with id ${id}`, "`synthbuild plan --explain --json` or dataset.lock list sample ids");
  if (matches.length > 1) {
    const named = matches
      .slice(0, 10)
      .map((s) => `  ${s.id}  ${m.dimensions.map((d, i) => `${d.name}=${s.values[i]!.key}`).join(" ")}${s.repeat ? ` repeat=${s.repeat}` : ""}`);
    throw new UsageError(
      `${id} matches ${matches.length} samples:\n${named.join("\n")}${matches.length > 10 ? `\n  … and ${matches.length - 10} more` : ""}`,
      "give more characters of the id",
    );
  }
  return matches[0]!;
}
