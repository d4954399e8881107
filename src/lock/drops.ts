/** Samples a step dropped, for the build's summary: how many, and one reason as it was given. */
export interface DropCount {
  step: string;
  count: number;
  /** The first dropped sample's reason (reasons carry per-sample detail, such as a length). */
  example: string;
  /** Up to three ids, for `synthbuild show`. */
  samples: string[];
}

/** Dropped samples grouped by the step that dropped them: most first, then by step id. */
export function countDrops(samples: Iterable<{ id: string; status: string; reason?: { step: string; why: string } }>): DropCount[] {
  const by = new Map<string, DropCount>();
  for (const s of samples) {
    if (s.status !== "dropped" || !s.reason) continue;
    const d = by.get(s.reason.step);
    if (!d) by.set(s.reason.step, { step: s.reason.step, count: 1, example: s.reason.why, samples: [s.id] });
    else {
      d.count++;
      if (d.samples.length < 3) d.samples.push(s.id);
    }
  }
  return [...by.values()].sort((a, b) => b.count - a.count || (a.step < b.step ? -1 : 1));
}
