import { stat } from "node:fs/promises";
import { dirname } from "node:path";
import { UsageError } from "../errors.js";
import { outputTargets } from "../manifest/output-targets.js";
import type { Manifest } from "../manifest/types.js";

/**
 * Before any request is paid for: can every output be written where the manifest says? A file
 * where a folder must go (or the reverse) is the user's to fix, and better found now than after
 * the last answer arrives.
 */
export async function checkOutputPaths(m: Manifest): Promise<void> {
  for (const out of m.outputs) {
    for (const t of outputTargets(out)) {
      const here = await stat(t.abs).catch(() => undefined);
      if (here && out.format !== "files" && here.isDirectory())
        throw new UsageError(`output ${t.path} is a folder`, "name a file for this format, or remove the folder");
      if (here && out.format === "files" && !here.isDirectory())
        throw new UsageError(`output ${t.path} is a file, but format files writes a folder there`, "remove the file or choose another path");
      for (let dir = dirname(t.abs); dir !== dirname(dir); dir = dirname(dir)) {
        const s = await stat(dir).catch(() => undefined);
        if (!s) continue;
        if (!s.isDirectory())
          throw new UsageError(`output ${t.path} cannot be written: ${dir} is a file, not a folder`, "choose an output path whose folders are folders");
        break;
      }
    }
  }
}
