import { readFile, realpath, stat } from "node:fs/promises";
import { isAbsolute, relative, resolve, sep } from "node:path";
import type { Diagnostic } from "../errors.js";
import { byteName, decodeUtf8 } from "../util/utf8.js";
import type { YamlSource } from "./source.js";

/**
 * The folders `file:` and `glob:` may read, as real paths (symlinks resolved): the project's own,
 * and the shared ones the manifest lists under `shared_data:`. Anything else (`/proc/self/environ`,
 * `../../etc/hosts`, a link in data/ that leads out) would put another folder's contents into
 * prompts, the cache, the lock and dist/ without the manifest ever saying so.
 */
export type Roots = readonly string[];

export function within(real: string, roots: Roots): boolean {
  return roots.some((root) => {
    const rel = relative(root, real);
    return rel === "" || (rel !== ".." && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
  });
}

export const OUTSIDE_HINT = "inputs are read from the manifest's folder; to read a folder outside it, list it under shared_data: (see the README)";

/** The project folder and every `shared_data:` folder, by real path; a listed folder that is not one is an error. */
export async function resolveRoots(src: YamlSource, shared: readonly string[] | undefined, dir: string, errors: Diagnostic[]): Promise<string[]> {
  // parseManifest() may be given text whose folder does not exist: then nothing can be read anyway.
  const roots = [await realpath(dir).catch(() => dir)];
  for (const [i, folder] of (shared ?? []).entries()) {
    const s = await stat(resolve(dir, folder)).catch(() => undefined);
    if (!s?.isDirectory()) {
      errors.push(
        src.at(
          ["shared_data", i],
          s ? `${folder} is not a folder` : `folder not found: ${folder}`,
          "shared_data: lists folders; a path is relative to the manifest's folder",
        ),
      );
      continue;
    }
    roots.push(await realpath(resolve(dir, folder)));
  }
  return roots;
}

export type InputText = { text: string } | { problem: string; hint: string };

/**
 * An input file's text, read only if its real path is under a root, and only if it is UTF-8 (a
 * lenient decoding would put U+FFFD into prompts unnoticed). `shown` is how diagnostics name it.
 */
export async function readInput(abs: string, shown: string, roots: Roots, notFoundHint = "the path is relative to the manifest's folder"): Promise<InputText> {
  let real: string;
  try {
    real = await realpath(abs);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return { problem: code === "ENOENT" ? `file not found: ${shown}` : `cannot read ${shown}: ${code}`, hint: notFoundHint };
  }
  if (!within(real, roots)) return { problem: `${shown} is outside the project folder${real === abs ? "" : ` (it leads to ${real})`}`, hint: OUTSIDE_HINT };
  let bytes: Buffer;
  try {
    bytes = await readFile(real);
  } catch (err) {
    return { problem: `cannot read ${shown}: ${(err as NodeJS.ErrnoException).code}`, hint: "check that it is a readable file" };
  }
  const decoded = decodeUtf8(bytes);
  if ("text" in decoded) return decoded;
  const { line, col, byte } = decoded.notUtf8;
  return { problem: `${shown}:${line}:${col}: not UTF-8 text (${byteName(byte)})`, hint: "save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)" };
}
