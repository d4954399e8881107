import { readdir } from "node:fs";
import { realpath } from "node:fs/promises";
import { dirname } from "node:path";
import { type Roots, within } from "./confine.js";

export interface GlobResult {
  /** Sorted, relative to the manifest's folder, no dot files. */
  readonly files: string[];
  /** Folders the walk would have entered outside every root (not read). */
  readonly outside: string[];
  /** Folders that are a link back to a folder the walk is already inside (not read again), with that folder. */
  readonly loops: { readonly link: string; readonly target: string }[];
}

type ReaddirCallback = (err: NodeJS.ErrnoException | null, entries: unknown[]) => void;

/**
 * The files a glob dimension reads. fast-glob follows links to folders, and would go round a link
 * back to a folder it is in (data/sub/loop -> ..) until the path grows too long for the system:
 * 41 copies of one file for one such link, and with two an exponential walk that never ends. Every
 * folder is read through the `fs` hook below, which refuses (as an empty folder, reported here) one
 * whose real path is a folder the walk is already inside, or one outside `roots`.
 */
export async function globFiles(pattern: string, dir: string, roots?: Roots): Promise<GlobResult> {
  const { default: fg } = await import("fast-glob");
  const realOf = new Map<string, string>();
  const outside: string[] = [];
  const loops: { link: string; target: string }[] = [];
  const refuse = async (path: string): Promise<boolean> => {
    const real = await realpath(path).catch(() => undefined);
    if (real === undefined) return false; // readdir itself says why
    realOf.set(path, real);
    if (roots && !within(real, roots)) {
      outside.push(path);
      return true;
    }
    // Every folder on the way here, up to /: a link to the project folder (above the pattern's
    // base) is a circle too. The walk reads a folder before what is in it, so most are known.
    for (let up = dirname(path); ; up = dirname(up)) {
      let upReal = realOf.get(up);
      if (upReal === undefined) {
        upReal = await realpath(up).catch(() => up);
        realOf.set(up, upReal);
      }
      if (upReal === real) {
        loops.push({ link: path, target: up });
        return true;
      }
      if (up === dirname(up)) return false;
    }
  };
  const guarded = (path: string, options: unknown, callback?: ReaddirCallback) => {
    const cb = (typeof options === "function" ? options : callback) as ReaddirCallback;
    refuse(path).then(
      (no) => (no ? cb(null, []) : typeof options === "function" ? readdir(path, cb as never) : readdir(path, options as never, cb as never)),
      (err: NodeJS.ErrnoException) => cb(err, []),
    );
  };
  const files = await fg(pattern, { cwd: dir, onlyFiles: true, dot: false, fs: { readdir: guarded as never } });
  return { files: files.sort(), outside: outside.sort(), loops: loops.sort((a, b) => (a.link < b.link ? -1 : 1)) };
}
