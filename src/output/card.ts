import { readFile, rm } from "node:fs/promises";
import { basename, join, posix } from "node:path";
import type { Lock } from "../lock/lockfile.js";
import { licenseGuess } from "../manifest/license.js";
import { outputTargets } from "../manifest/output-targets.js";
import type { Manifest, Output } from "../manifest/types.js";
import { writeFileAtomic } from "../util/fs-atomic.js";
import { hash64 } from "../util/hash.js";
import { cardText, MARK } from "./card-text.js";

export interface CardTarget {
  /** Relative to the manifest's folder, as the lock's output paths are. */
  path: string;
  abs: string;
  /** The folder the card's data_files paths are relative to (the dataset repo's root). */
  folder: string;
  outputs: Output[];
}

/**
 * Where the card goes: README.md in the deepest folder holding every JSONL output it describes,
 * which is the root of the repository `huggingface-cli upload` would make of it. `files` outputs
 * are never described: `datasets.load_dataset` reads a .txt file as lines, not as a pair.
 */
export function cardTarget(m: Manifest): CardTarget | undefined {
  const outputs = m.outputs.filter((o) => o.card);
  if (!outputs.length) return undefined;
  const dirs = outputs.flatMap((o) =>
    outputTargets(o).map((t) =>
      posix
        .dirname(t.path)
        .split("/")
        .filter((s) => s !== "."),
    ),
  );
  let common = dirs[0]!;
  for (const d of dirs) {
    let i = 0;
    while (i < common.length && common[i] === d[i]) i++;
    common = common.slice(0, i);
  }
  const folder = common.length ? common.join("/") : ".";
  return { path: posix.join(folder, "README.md"), abs: join(m.dir, folder, "README.md"), folder, outputs };
}

/** The card the lock describes, byte for byte: nothing in it but the manifest, the lock and the tool's version. */
export function renderCard(m: Manifest, target: CardTarget, lock: Lock, lockHash: string): string {
  const body = cardText(m, target, lock, lockHash);
  return `---\n${MARK} ${hash64(body)}: written by synthbuild build; delete this line to keep your own edits\n${body}`;
}

type Ownership = "ours" | "edited" | "theirs";

/** Ours (untouched: its checksum holds), ours but edited since, or someone else's README. */
export function ownership(text: string): Ownership {
  const nl = text.indexOf("\n");
  const second = text.indexOf("\n", nl + 1);
  const mark = text.slice(nl + 1, second).match(/^# synthbuild-card ([0-9a-f]+):/);
  if (text.slice(0, nl) !== "---" || !mark || second < 0) return "theirs";
  return hash64(text.slice(second + 1)) === mark[1] ? "ours" : "edited";
}

const readText = (abs: string) => readFile(abs, "utf8").catch(() => undefined);

/**
 * Why the card on disk is not the one this lock describes, or undefined. Someone's own README is
 * never a reason: it is kept, and a build would keep it too. Shared by decide() and verify.
 */
export async function cardProblem(m: Manifest, lock: Lock, lockHash: string): Promise<string | undefined> {
  const target = cardTarget(m);
  if (target) {
    const disk = await readText(target.abs);
    if (disk === undefined) return `${target.path} (the dataset card) is missing`;
    const owner = ownership(disk);
    if (owner !== "theirs" && disk !== renderCard(m, target, lock, lockHash))
      return `${target.path} is not the dataset card the lock describes${owner === "edited" ? " (it was edited since synthbuild wrote it)" : ""}`;
  }
  const stale = await staleCards(m, [lock], target);
  return stale.length ? `${stale[0]} is a dataset card the manifest no longer writes` : undefined;
}

/**
 * Write the card (unless a README of the user's own is there: kept, and said) and remove the
 * untouched cards of earlier builds that this one no longer writes. Returns warnings.
 */
export async function writeCard(m: Manifest, lock: Lock, lockHash: string, previous?: Lock): Promise<string[]> {
  const warnings: string[] = [];
  const target = cardTarget(m);
  for (const path of await staleCards(m, previous ? [previous, lock] : [lock], target)) {
    await rm(join(m.dir, path), { force: true });
    warnings.push(`removed ${path}: the manifest no longer writes a dataset card there`);
  }
  if (!target) return warnings;
  const disk = await readText(target.abs);
  if (disk !== undefined && ownership(disk) === "theirs") {
    warnings.push(`${target.path} is not synthbuild's dataset card: kept as it is (remove it to have one written, or set card: false on the output)`);
    return warnings;
  }
  const text = renderCard(m, target, lock, lockHash);
  if (disk === text) return warnings;
  await writeFileAtomic(target.abs, text);
  if (disk !== undefined && ownership(disk) === "edited") warnings.push(editedWarning(m, target, disk));
  return warnings;
}

/**
 * A card of ours edited by hand has just been written over: say so, and how to keep such an edit.
 * A license written into it by hand (the likeliest edit) is named, with the key that keeps it.
 */
function editedWarning(m: Manifest, target: CardTarget, disk: string): string {
  const end = disk.indexOf("\n---", 4);
  const line = (end < 0 ? "" : disk.slice(0, end)).match(/^license:[ \t]*(?:"([^"\n]*)"|'([^'\n]*)'|([^\n#]*[^\s#]))/m);
  const edited = line?.[1] ?? line?.[2] ?? line?.[3];
  const id = licenseGuess(edited);
  const keep =
    id !== undefined && id !== (m.card?.license ?? "other") ? `; to keep its license ${edited}, set card: { license: ${id} } in ${basename(m.file)}` : "";
  return `${target.path} had been edited since synthbuild wrote it: written anew, and the edits are gone${keep} (a card whose '${MARK}' line is deleted is kept as yours, and never updated again)`;
}

/**
 * Untouched cards of ours in a folder that held an output of these locks, other than the one
 * the manifest writes now: left by an output that moved, or by `card: false`. An edited one is
 * the user's now and stays.
 */
async function staleCards(m: Manifest, locks: Lock[], target: CardTarget | undefined): Promise<string[]> {
  const folders = new Set<string>();
  for (const l of locks) for (const o of l.outputs) for (let d = posix.dirname(o.path); ; d = posix.dirname(d)) if ((folders.add(d), d === ".")) break;
  const stale: string[] = [];
  for (const folder of [...folders].sort()) {
    const path = posix.join(folder, "README.md");
    if (path === target?.path) continue;
    const disk = await readText(join(m.dir, path));
    if (disk !== undefined && ownership(disk) === "ours") stale.push(path);
  }
  return stale;
}
