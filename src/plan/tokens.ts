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
    counter = (text: string) => m.countTokens(text);
  }
  return counter;
}

/** Input tokens of a chat request: content plus the chat format's few tokens per message. */
export function requestTokens(count: Counter, req: ChatRequest): number {
  return req.messages.reduce((n, m) => n + count(m.content) + 4, 3);
}
