/**
 * JSON with object keys sorted recursively, so that equal values always serialise to equal text.
 * Everything that is hashed goes through here; `JSON.stringify` of an object whose key order can
 * vary would make cache keys depend on how a manifest happened to be written.
 *
 * Written as loops over one growing string (no map/filter/join arrays, keys sorted only when they
 * are not in order already): it runs for every lock line and every recipe, several times a sample.
 * test/unit/canonical-json.test.ts holds it to the plain definition on random values.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (value === undefined) return "null";
    if (typeof value === "number" && !Number.isFinite(value)) throw new TypeError(`cannot hash non-finite number ${value}`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    let s = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) s += ",";
      // A hole stays empty, as Array.prototype.join leaves it.
      if (i in value) s += canonicalJson(value[i]);
    }
    return `${s}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i - 1]! > keys[i]!) {
      keys.sort();
      break;
    }
  }
  let s = "{";
  let first = true;
  for (const k of keys) {
    const v = obj[k];
    if (v === undefined) continue;
    if (!first) s += ",";
    first = false;
    s += `${quoted(k)}:${canonicalJson(v)}`;
  }
  return `${s}}`;
}

/** Keys recur (field names, dimension names): each is quoted once. Bounded, for keys that do not. */
const quotes = new Map<string, string>();
function quoted(key: string): string {
  let q = quotes.get(key);
  if (q === undefined) {
    q = JSON.stringify(key);
    if (quotes.size < 4096) quotes.set(key, q);
  }
  return q;
}
