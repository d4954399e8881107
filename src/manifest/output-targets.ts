import { join } from "node:path";
import type { Output } from "./types.js";

/** A manifest's `split:` as (name, fraction) pairs: every key but `group_by`. */
export function fractionsOf(split: { readonly [key: string]: unknown } | undefined): [string, number][] | undefined {
  if (!split) return undefined;
  return Object.entries(split).filter((e): e is [string, number] => e[0] !== "group_by" && typeof e[1] === "number");
}

/** `dist/x.jsonl` + `train` → `dist/x.train.jsonl`. */
export function splitPath(path: string, split: string): string {
  const slash = path.lastIndexOf("/");
  const dot = path.lastIndexOf(".");
  return dot > slash + 1 ? `${path.slice(0, dot)}.${split}${path.slice(dot)}` : `${path}.${split}`;
}

/** The files (or folders, for `files`) one output writes: one, or one per split. */
export function outputTargets(out: Pick<Output, "path" | "absPath" | "format" | "split">): { path: string; abs: string; split: string | undefined }[] {
  if (!out.split) return [{ path: out.path, abs: out.absPath, split: undefined }];
  return out.split.map(([name]) =>
    out.format === "files"
      ? { path: out.path === "." ? name : `${out.path}/${name}`, abs: join(out.absPath, name), split: name }
      : { path: splitPath(out.path, name), abs: splitPath(out.absPath, name), split: name },
  );
}
