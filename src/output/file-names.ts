/**
 * Safe, collision-free file names for the `files` format: only [A-Za-z0-9._-], no leading dot,
 * bounded length. Colliding names all get the sample id appended, so which sample gets which
 * name never depends on order.
 */
export function safeName(raw: string): string {
  const s = raw
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .replace(/[^A-Za-z0-9._-]+/g, "-")
    .replace(/-{2,}/g, "-")
    .replace(/^[-.]+|[-.]+$/g, "")
    .slice(0, 100)
    .replace(/[-.]+$/g, "");
  return s || "sample";
}

export function uniqueNames(entries: { id: string; raw: string }[]): Map<string, string> {
  const base = entries.map((e) => ({ id: e.id, name: safeName(e.raw) }));
  const count = new Map<string, number>();
  for (const b of base) count.set(b.name.toLowerCase(), (count.get(b.name.toLowerCase()) ?? 0) + 1);
  const out = new Map<string, string>();
  for (const b of base) out.set(b.id, count.get(b.name.toLowerCase())! > 1 ? `${b.name}-${b.id}` : b.name);
  return out;
}
