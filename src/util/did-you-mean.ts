import { distance } from "fastest-levenshtein";

/** The closest candidate within a typo's reach, if any. */
export function didYouMean(word: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  const limit = Math.max(2, Math.floor(word.length / 3));
  for (const c of candidates) {
    const d = distance(word.toLowerCase(), c.toLowerCase());
    if (d < bestScore && d <= limit) {
      best = c;
      bestScore = d;
    }
  }
  return best;
}

export function suggestion(word: string, candidates: Iterable<string>): string | undefined {
  const m = didYouMean(word, candidates);
  return m ? `did you mean '${m}'?` : undefined;
}
