/**
 * Answers a generate step got but cannot use: the model's own verdicts (a refusal, a stop by the
 * endpoint's content filter) and an empty answer. They drop the sample with that reason rather
 * than fail it: they are answers, paid for and cached, and asking again gets the same (an empty
 * answer may be retried instead: `on_empty: retry`). Never a training row: OpenAI's format check
 * rejects an empty assistant message, and a refusal teaches the model to refuse.
 */
export function dropReason(answer: { text: string; finishReason: string }): string | undefined {
  if (answer.finishReason === "refusal") return `the model refused: ${oneLine(answer.text)}`;
  if (answer.finishReason === "content_filter") return "the endpoint's content filter stopped the answer (finish_reason content_filter)";
  if (isEmptyAnswer(answer.text)) return answer.finishReason === "length" ? "empty answer (max_tokens ran out before any text)" : "empty answer";
  return undefined;
}

export function isEmptyAnswer(text: string): boolean {
  return text.trim() === "";
}

/** An empty answer that is not the model's verdict: what `on_empty: retry` asks again for. */
export function isRetryableEmpty(answer: { text: string; finishReason: string }): boolean {
  return answer.finishReason !== "refusal" && answer.finishReason !== "content_filter" && isEmptyAnswer(answer.text);
}

function oneLine(text: string, max = 120): string {
  const t = text.replace(/\s+/g, " ").trim();
  return t.length > max ? `${t.slice(0, max)}…` : t;
}
