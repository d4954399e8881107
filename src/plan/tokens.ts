import type { ChatRequest } from "./request.js";

type Counter = (text: string) => number;
let counter: Counter | undefined;

/**
 * Token counts with a real BPE tokenizer (o200k, what current OpenAI models use). Loaded on
 * first use: it costs ~150 ms, which a no-op build should not pay.
 */
export async function loadTokenCounter(): Promise<Counter> {
  if (!counter) {
    const m = await import("gpt-tokenizer");
    counter = boundedCounter((text: string) => m.countTokens(text));
  }
  return counter;
}

/**
 * The longest run of one kind of character (space, or not space) that is counted whole. The
 * tokenizer splits text into words before merging byte pairs, and merges each word in time
 * quadratic in its length: a 1 MB value of one repeated character is one "word", and counting it
 * took 11 minutes. Words of ordinary text are far shorter than this, so it is counted exactly.
 */
export const MAX_RUN = 256;

const LONG_RUN = `\\s{${MAX_RUN},}|\\S{${MAX_RUN},}`;
const HAS_LONG_RUN = new RegExp(LONG_RUN);
const LONG_RUNS = new RegExp(LONG_RUN, "g");

/**
 * `count`, exact for text without a run of MAX_RUN or more; a longer run is counted in pieces of
 * MAX_RUN characters, each cut costing at most a token or so of accuracy (a few percent), so the
 * work stays linear in the text.
 */
export function boundedCounter(count: Counter): Counter {
  return (text) => {
    if (!HAS_LONG_RUN.test(text)) return count(text);
    let n = 0;
    let from = 0;
    for (const m of text.matchAll(LONG_RUNS)) {
      if (m.index > from) n += count(text.slice(from, m.index));
      // Not splitting a UTF-16 surrogate pair: a cut there would count two broken characters.
      for (let i = 0; i < m[0].length; ) {
        let end = Math.min(i + MAX_RUN, m[0].length);
        if (end < m[0].length && /[\uD800-\uDBFF]/.test(m[0][end - 1]!)) end--;
        n += count(m[0].slice(i, end));
        i = end;
      }
      from = m.index + m[0].length;
    }
    if (from < text.length) n += count(text.slice(from));
    return n;
  };
}

/** Input tokens of a chat request: content plus the chat format's few tokens per message. */
export function requestTokens(count: Counter, req: ChatRequest): number {
  return req.messages.reduce((n, m) => n + count(m.content) + 4, 3);
}
