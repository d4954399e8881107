import type { LockHeader } from "../lock/lockfile.js";
import type { Manifest, Target } from "../manifest/types.js";

/** How many candidates a build starts from, and why (for `plan`). */
export interface CandidateCount {
  count: number;
  why: string;
}

/**
 * The set of samples is no longer a function of the manifest alone: it is as many candidates as
 * the last build used (the lock's sample count), so a rebuild expands exactly those and a no-op
 * stays a no-op. Without such a lock, start from target.rows, the least that could be enough.
 */
export function candidateCount(t: Target, header: LockHeader | undefined): CandidateCount {
  if (header?.target) {
    const count = Math.min(header.samples, t.maxCandidates);
    return { count, why: `${count} candidates as the lock used${count < header.samples ? ` (of its ${header.samples}, cut to max_candidates)` : ""}` };
  }
  return { count: Math.min(t.rows, t.maxCandidates), why: `${t.rows} candidates to start (no lock built with target:), more if steps drop rows` };
}

/**
 * The next wave's size: what the keep rate seen so far says is missing, with a tenth more so one
 * wave usually suffices, at least as many as rows missing, at most max_candidates left. With no
 * row kept yet the rate says nothing, so the candidates tried so far are doubled.
 */
export function nextWave(t: Target, tried: number, kept: number): number {
  const left = t.maxCandidates - tried;
  const missing = t.rows - kept;
  if (left <= 0 || missing <= 0) return 0;
  // In integers: 50 × 100 / 50 × 1.1 is 110.00000000000001 in floating point, one too many.
  const want = kept === 0 ? Math.max(tried, missing) : Math.ceil((missing * tried * 11) / (kept * 10));
  return Math.min(left, Math.max(missing, want));
}

export function headerTarget(m: Manifest): LockHeader["target"] {
  return m.target && { rows: m.target.rows, max_candidates: m.target.maxCandidates };
}

/** What a build made of `target:`, as its lock says: rows wanted and kept, candidates used and allowed. */
export interface TargetOutcome {
  rows: number;
  kept: number;
  candidates: number;
  max_candidates: number;
  reached: boolean;
}

export function targetOutcome(h: LockHeader): TargetOutcome | undefined {
  if (!h.target) return undefined;
  return { rows: h.target.rows, kept: h.kept, candidates: h.samples, max_candidates: h.target.max_candidates, reached: h.kept >= h.target.rows };
}
