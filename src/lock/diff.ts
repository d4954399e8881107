import { canonicalJson } from "../util/canonical-json.js";
import type { Lock, LockSample, LockStepDef } from "./lockfile.js";

/** Samples that share a cause, with a few ids to look at. */
export interface DiffGroup {
  cause: string;
  count: number;
  ids: string[];
}

export interface LockDiff {
  /** What changed in the manifest as a whole: seed, combine, steps' definitions, tool versions. */
  manifest: string[];
  added: DiffGroup[];
  removed: DiffGroup[];
  changed: DiffGroup[];
  /** Rows that moved between splits. */
  moved: { id: string; from: string; to: string }[];
  outputs: { path: string; rows: [number | null, number | null]; changed: boolean }[];
}

/**
 * What changed between two releases, in the terms a person reviews a pull request in: which
 * value was added or removed, which step's template, model or parameters changed (and which
 * samples that touched), which answers differ for the same request (a re-roll, another writer),
 * which rows moved between splits, and per output its row count. From the two locks alone.
 */
export function diffLocks(a: Lock, b: Lock): LockDiff {
  const manifest = headerChanges(a, b);
  const before = new Map(a.samples.map((s) => [s.id, s]));
  const after = new Map(b.samples.map((s) => [s.id, s]));
  const valuesOf = (lock: Lock) => {
    const m = new Map<string, Set<string>>();
    for (const s of lock.samples) for (const [d, v] of Object.entries(s.values)) (m.get(d) ?? m.set(d, new Set()).get(d)!).add(v);
    return m;
  };
  const va = valuesOf(a);
  const vb = valuesOf(b);
  const added = new Grouping();
  const removed = new Grouping();
  const changed = new Grouping();
  const moved: LockDiff["moved"] = [];
  for (const s of b.samples) {
    const was = before.get(s.id);
    if (!was) added.add(newCause(s, va, a, b), s.id);
    else {
      const why = sampleChange(was, s, a, b);
      if (why) changed.add(why, s.id);
      if (was.split && s.split && was.split !== s.split) moved.push({ id: s.id, from: was.split, to: s.split });
    }
  }
  for (const s of a.samples) if (!after.has(s.id)) removed.add(goneCause(s, vb, a, b), s.id);
  const paths = [...new Set([...a.outputs.map((o) => o.path), ...b.outputs.map((o) => o.path)])].sort();
  const outputs = paths.map((path) => {
    const x = a.outputs.find((o) => o.path === path);
    const y = b.outputs.find((o) => o.path === path);
    return { path, rows: [x?.rows ?? null, y?.rows ?? null] as [number | null, number | null], changed: x?.hash !== y?.hash };
  });
  return {
    manifest,
    added: added.groups(),
    removed: removed.groups(),
    changed: changed.groups(),
    moved: moved.sort((x, y) => (x.id < y.id ? -1 : 1)),
    outputs,
  };
}

class Grouping {
  private readonly byCause = new Map<string, string[]>();
  add(cause: string, id: string): void {
    (this.byCause.get(cause) ?? this.byCause.set(cause, []).get(cause)!).push(id);
  }
  groups(): DiffGroup[] {
    return [...this.byCause]
      .map(([cause, ids]) => ({ cause, count: ids.length, ids: ids.sort().slice(0, 5) }))
      .sort((x, y) => y.count - x.count || (x.cause < y.cause ? -1 : 1));
  }
}

function headerChanges(a: Lock, b: Lock): string[] {
  const out: string[] = [];
  const ha = a.header;
  const hb = b.header;
  if (ha.seed !== hb.seed) out.push(`seed ${ha.seed} → ${hb.seed}`);
  for (const k of ["mode", "n", "repeat"] as const)
    if (ha.combine[k] !== hb.combine[k]) out.push(`combine.${k} ${show(ha.combine[k])} → ${show(hb.combine[k])}`);
  const ta = ha.target;
  const tb = hb.target;
  if (ta?.rows !== tb?.rows || ta?.max_candidates !== tb?.max_candidates)
    out.push(`target ${ta ? `${ta.rows} rows (max ${ta.max_candidates})` : "unset"} → ${tb ? `${tb.rows} rows (max ${tb.max_candidates})` : "unset"}`);
  if (ha.versions.key !== hb.versions.key) out.push(`cache key version ${ha.versions.key} → ${hb.versions.key}`);
  if (ha.versions.render !== hb.versions.render) out.push(`rendering version ${ha.versions.render} → ${hb.versions.render}`);
  if ((ha.offline ?? false) !== (hb.offline ?? false)) out.push(hb.offline ? "now built --offline" : "no longer built --offline");
  const ids = [...new Set([...Object.keys(ha.steps), ...Object.keys(hb.steps)])];
  for (const id of ids) {
    const x = ha.steps[id];
    const y = hb.steps[id];
    if (!x) out.push(`step '${id}' added`);
    else if (!y) out.push(`step '${id}' removed`);
    else if (x.def !== y.def) out.push(`step '${id}' changed: ${partsChanged(x, y).join(", ")}`);
  }
  return out;
}

function newCause(s: LockSample, before: Map<string, Set<string>>, a: Lock, b: Lock): string {
  for (const [d, v] of Object.entries(s.values)) if (!before.get(d)?.has(v)) return `${d} '${v}' added`;
  // Under target: a candidate is added when rows fall short, whatever combine.repeat says.
  if (b.header.target) return `a further candidate for target.rows ${b.header.target.rows}`;
  if (s.repeat >= a.header.combine.repeat) return `combine.repeat raised to ${b.header.combine.repeat}`;
  if (a.header.seed !== b.header.seed) return `seed changed (a sample draws other combinations)`;
  if ((b.header.combine.n ?? 0) > (a.header.combine.n ?? 0)) return `combine.n raised to ${b.header.combine.n}`;
  return "combined anew (combine, exclude or a conditional dimension changed)";
}

function goneCause(s: LockSample, after: Map<string, Set<string>>, a: Lock, b: Lock): string {
  for (const [d, v] of Object.entries(s.values)) if (!after.get(d)?.has(v)) return `${d} '${v}' removed`;
  if (a.header.target) return `no longer among the candidates for target${b.header.target ? `.rows ${b.header.target.rows}` : " (removed)"}`;
  if (s.repeat >= b.header.combine.repeat) return `combine.repeat lowered to ${b.header.combine.repeat}`;
  if (a.header.seed !== b.header.seed) return "seed changed (a sample draws other combinations)";
  if ((b.header.combine.n ?? Infinity) < (a.header.combine.n ?? Infinity)) return `combine.n lowered to ${b.header.combine.n}`;
  return "no longer combined (combine, exclude or a conditional dimension changed)";
}

/**
 * Why a sample present in both differs, or undefined if it does not. The lock keeps steps by id,
 * not in pipeline order, so a step that differs only because what it reads changed is never the
 * cause while another step differs for a reason of its own (its definition, a reroll, another
 * answer): a reroll of `outline` is said as such, not as a change to `clean`, which reads it.
 */
function sampleChange(x: LockSample, y: LockSample, a: Lock, b: Lock): string | undefined {
  if (canonicalJson(x) === canonicalJson(y)) return undefined;
  // The cause found, by rank (lower first): the step's own change, then the sample's, then a consequence.
  let found: { rank: number; cause: string } | undefined;
  const consider = (rank: number, cause: string) => {
    if (!found || rank < found.rank) found = { rank, cause };
  };
  let presence = false;
  for (const id of Object.keys(b.header.steps).sort()) {
    const sx = x.steps[id];
    const sy = y.steps[id];
    if (!sx && !sy) continue;
    // Run in one release and not the other: the sample's status says why (see below).
    if (!sx || !sy) {
      presence = true;
      continue;
    }
    if (sx.r === sy.r && sx.out === sy.out) continue;
    const dx = a.header.steps[id];
    const dy = b.header.steps[id];
    if (dx && dy && dx.def !== dy.def) consider(0, `step '${id}' changed: ${partsChanged(dx, dy).join(", ")}`);
    // A new attempt is the cause even though the key and the recipe moved with it (and what reads it follows).
    else if ((x.attempts?.[id] ?? 0) !== (y.attempts?.[id] ?? 0)) consider(1, `step '${id}' rerolled`);
    else if (sx.key && sx.key === sy.key && sx.out !== sy.out) consider(2, `step '${id}': another answer to the same request (re-rolled, or another writer's)`);
    else if (x.texts !== y.texts) consider(3, "a file it reads changed");
    else if (sx.r !== sy.r && a.header.seed !== b.header.seed) consider(4, `seed changed ${a.header.seed} → ${b.header.seed}`);
    else if (sx.r === sy.r) consider(5, `step '${id}': its answer changed`);
    else consider(6, `step '${id}': what it reads changed`);
  }
  if (found && (found.rank < 6 || !presence)) return found.cause;
  if (canonicalJson(x.attempts ?? {}) !== canonicalJson(y.attempts ?? {})) return "rerolled, not built yet";
  if (x.status !== y.status) return y.reason ? `now ${y.status} at ${y.reason.step}: ${y.reason.why}` : `now ${y.status}`;
  if (x.split !== y.split) return "moved to another split";
  return found?.cause ?? "its record changed";
}

/** Which parts of a step's definition differ: `template`, `params.temperature 1 → 1.2`, `min_chars 400 → 300`. */
export function partsChanged(was: LockStepDef, now: Readonly<Record<string, unknown>>): string[] {
  const out: string[] = [];
  const keys = [...new Set([...Object.keys(was), ...Object.keys(now)])].filter((k) => k !== "def").sort();
  for (const k of keys) {
    const a = was[k];
    const b = now[k];
    if (canonicalJson(a ?? null) === canonicalJson(b ?? null)) continue;
    if (k === "template" || k === "source" || k === "extra_body" || k === "json_schema" || k === "graph") out.push(k === "source" ? "the module's source" : k);
    else if (k === "imports") {
      // A run module's imported files, by path → content hash: name the file, not its hash.
      const x = isRecord(a) ? a : {};
      const y = isRecord(b) ? b : {};
      for (const f of [...new Set([...Object.keys(x), ...Object.keys(y)])].sort()) {
        if (x[f] !== y[f]) out.push(`${f} ${x[f] === undefined ? "now imported" : y[f] === undefined ? "no longer imported" : "changed"}`);
      }
    } else if (isRecord(a) && isRecord(b)) {
      for (const p of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        if (canonicalJson(a[p] ?? null) !== canonicalJson(b[p] ?? null)) out.push(`${k}.${p} ${show(a[p])} → ${show(b[p])}`);
      }
    } else out.push(`${k} ${show(a)} → ${show(b)}`);
  }
  return out.length ? out : ["its definition"];
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function show(v: unknown): string {
  return v === undefined ? "(unset)" : JSON.stringify(v);
}
