/**
 * `card.license`: the dataset card's `license:`, a Hugging Face license id (mit, apache-2.0,
 * cc-by-4.0, openrail++, other, ...). Only its shape is checked, not that the Hub knows it: the
 * Hub's list grows, and `other` covers terms of one's own. Kept apart from schema.ts (and zod) so
 * that the card, written and checked on a no-op's path, can read it cheaply.
 */
export const LICENSE_ID = /^[a-z0-9][a-z0-9.+-]{0,63}$/;

export const LICENSE_MESSAGE = "a license is a Hugging Face license id: lowercase letters, digits, '.', '+' and '-' (at most 64)";

/** The id meant by a value (lowercased, spaces and underscores as '-'), if that is one. */
export function licenseGuess(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const guess = value
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, "-");
  return LICENSE_ID.test(guess) ? guess : undefined;
}

/** How to write a `card.license` that is not an id. */
export function licenseHint(value: unknown): string {
  const ids = "the Hub's ids: https://huggingface.co/docs/hub/repositories-licenses";
  const guess = licenseGuess(value);
  return guess !== undefined && guess !== value
    ? `write it as an id: license: ${guess} (${ids}; license: other for terms of your own)`
    : `e.g. license: mit, apache-2.0 or cc-by-4.0 (${ids}; license: other for terms of your own)`;
}
