import type { Lock } from "./lockfile.js";

/** Sample id → (generate step id → attempt ≥ 1): what `synthbuild reroll` has recorded. */
export type AttemptsById = Map<string, Record<string, number>>;

export function attemptsOfLock(lock: Lock | undefined): AttemptsById {
  const out: AttemptsById = new Map();
  for (const s of lock?.samples ?? []) if (s.attempts) out.set(s.id, s.attempts);
  return out;
}

/**
 * The attempts named anywhere in a lock's text, read line by line and forgiving: a lock with
 * git's conflict markers in it does not parse, yet both sides' sample lines are there, each
 * whole. Lines that are not a sample with attempts (markers, the header, a torn line) are skipped.
 */
export function attemptsInText(text: string): AttemptsById {
  const out: AttemptsById = new Map();
  for (const line of text.split("\n")) {
    if (!line.includes('"attempts"')) continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch {
      continue;
    }
    if (obj === null || typeof obj !== "object") continue;
    const { id, attempts } = obj as { id?: unknown; attempts?: unknown };
    if (typeof id !== "string" || attempts === null || typeof attempts !== "object") continue;
    const clean: Record<string, number> = {};
    for (const [step, n] of Object.entries(attempts)) if (Number.isInteger(n) && (n as number) >= 1) clean[step] = n as number;
    mergeInto(out, id, clean);
  }
  return out;
}

/**
 * Attempts of several locks (the two sides of a merge) as one: per sample and step, the highest.
 * The same attempt of the same sample is the same request on every branch, so two branches that
 * both rerolled a sample once name one answer (the first stored wins); where one rerolled further,
 * its later draw is kept, and the earlier one is still in the cache.
 */
export function mergeAttempts(...all: AttemptsById[]): AttemptsById {
  const out: AttemptsById = new Map();
  for (const m of all) for (const [id, a] of m) mergeInto(out, id, a);
  return out;
}

function mergeInto(out: AttemptsById, id: string, a: Record<string, number>): void {
  if (!Object.keys(a).length) return;
  const prev = out.get(id);
  if (!prev) {
    out.set(id, { ...a });
    return;
  }
  for (const [step, n] of Object.entries(a)) prev[step] = Math.max(prev[step] ?? 0, n);
}
