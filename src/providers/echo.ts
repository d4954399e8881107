import type { ChatRequest } from "../plan/request.js";
import { hash64 } from "../util/hash.js";
import type { Provider, ProviderAnswer } from "./types.js";

const WORDS = (
  "the a an of in on under over beyond after before while river city storm letter secret door " +
  "machine garden mirror stranger captain archive signal harbor tower winter engine lantern map " +
  "promise silence voyage ember hollow orchard council verdict rumor thread compass ledger " +
  "discovers hides returns betrays remembers follows questions rebuilds escapes chooses " +
  "quietly suddenly slowly bravely finally together alone again"
).split(" ");

/**
 * The built-in offline provider. Its answer is a deterministic function of the request, so the
 * whole pipeline (cache, lock, outputs) can run with no key and no network. Every answer says it
 * is offline, and the cache key includes the provider, so an echo answer is never taken for a
 * real model's.
 */
export class EchoProvider implements Provider {
  readonly offline = true;

  async complete(req: ChatRequest): Promise<ProviderAnswer> {
    return echoAnswer(req);
  }
}

export function echoAnswer(req: ChatRequest): ProviderAnswer {
  const last = [...req.messages].reverse().find((m) => m.role === "user")?.content ?? "";
  const seed = hash64(JSON.stringify(req.messages) + JSON.stringify(req.params));
  const gist = last.replace(/\s+/g, " ").trim().split(" ").slice(0, 24).join(" ");
  const words: string[] = [];
  let state = parseInt(seed.slice(0, 8), 16);
  for (let i = 0; i < 220; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    words.push(WORDS[state % WORDS.length]!);
    if (i % 14 === 13) words[words.length - 1] += ".";
  }
  const body = `[offline echo ${seed.slice(0, 8)}] In answer to: "${gist}". ${words.join(" ")}`;
  const input = Math.ceil(req.messages.reduce((n, m) => n + m.content.length, 0) / 4);
  if (req.json_schema) {
    // Structured output offline: a value of the schema's shape, its text fields filled with echo.
    const text = JSON.stringify(shaped(req.json_schema, body));
    return { text, finishReason: "stop", usage: { input, output: Math.ceil(text.length / 4) }, model: "synthbuild-echo", fingerprint: "offline" };
  }
  const limit = Number(req.params.max_tokens ?? req.params.max_completion_tokens ?? Infinity);
  const all = body.split(" ");
  const truncated = all.length > limit;
  const text = truncated ? all.slice(0, limit).join(" ") : body;
  return {
    text,
    finishReason: truncated ? "length" : "stop",
    usage: { input, output: truncated ? limit : all.length },
    model: "synthbuild-echo",
    fingerprint: "offline",
  };
}

/** The simplest value a JSON Schema accepts, with `text` wherever a free string goes. */
function shaped(schema: unknown, text: string): unknown {
  const s = (schema ?? {}) as Record<string, unknown>;
  if ("const" in s) return s.const;
  if (Array.isArray(s.enum) && s.enum.length) return s.enum[0];
  for (const k of ["anyOf", "oneOf", "allOf"]) if (Array.isArray(s[k]) && (s[k] as unknown[]).length) return shaped((s[k] as unknown[])[0], text);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case "object": {
      const props = (s.properties ?? {}) as Record<string, unknown>;
      return Object.fromEntries(Object.entries(props).map(([k, v]) => [k, shaped(v, text)]));
    }
    case "array": {
      const n = Math.max(1, Number(s.minItems ?? 1));
      return Array.from({ length: n }, () => shaped(s.items, text));
    }
    case "integer":
    case "number":
      return typeof s.minimum === "number" ? s.minimum : 0;
    case "boolean":
      return false;
    case "null":
      return null;
    default: {
      const max = typeof s.maxLength === "number" ? s.maxLength : Infinity;
      return text.slice(0, max);
    }
  }
}
