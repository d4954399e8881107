import type { GenerateStep, ProviderKind } from "../manifest/types.js";
import { renderTemplate } from "../template/engine.js";
import { hashValue } from "../util/hash.js";

/** Bump when the meaning of a key changes; old cache entries then simply stop matching. */
export const KEY_VERSION = 1;

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/**
 * Exactly what is sent, minus transport: this is what the cache key covers. Endpoint URL, headers,
 * API key, concurrency and limits are deliberately absent: they cannot change the answer.
 */
export interface ChatRequest {
  provider: ProviderKind;
  model: string;
  messages: ChatMessage[];
  params: Record<string, unknown>;
  extra_body?: Record<string, unknown>;
  json_schema?: Record<string, unknown>;
}

export function renderRequest(step: GenerateStep, scope: Record<string, unknown>, provider: ProviderKind = step.model.provider): ChatRequest {
  const messages = step.messages.map((m) => ({ role: m.role, content: renderTemplate(m.template, scope) }));
  const req: ChatRequest = { provider, model: provider === "echo" ? "echo" : step.model.name, messages, params: { ...step.model.params } };
  if (Object.keys(step.model.extraBody).length) req.extra_body = { ...step.model.extraBody };
  if (step.jsonSchema) req.json_schema = step.jsonSchema;
  return req;
}

export function requestKey(req: ChatRequest): string {
  return hashValue({ key: KEY_VERSION, ...req });
}
