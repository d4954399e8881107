import type { GenerateStep, ProviderKind } from "../manifest/types.js";
import { renderTemplate } from "../template/engine.js";
import { canonicalJson } from "../util/canonical-json.js";
import { hash128, hashValue } from "../util/hash.js";

/**
 * Bump when the meaning of a key changes; old cache entries then simply stop matching, so a bump
 * is a migration users pay for: say so in the README, and update the golden values in
 * test/unit/identity-golden.test.ts.
 *
 * 1: provider, model, messages, params, extra_body, json_schema.
 * 2: and the endpoint that answers (`endpoint`), so that answers from a test server, a LAN box
 *    or a gateway never stand in for another endpoint's. `api: "completions"` joined later,
 *    present only for that API, so no chat key changed.
 */
export const KEY_VERSION = 2;

export interface ChatMessage {
  role: "system" | "user" | "assistant";
  content: string;
}

/**
 * Exactly what is sent, and to whom: this is what the cache key covers. Headers, API key,
 * concurrency and limits are deliberately absent: they cannot change the answer.
 */
export interface ChatRequest {
  provider: ProviderKind;
  /** Who answers (ModelConfig.endpoint; `echo` offline). Not sent: the client's base URL is. */
  endpoint: string;
  model: string;
  messages: ChatMessage[];
  params: Record<string, unknown>;
  extra_body?: Record<string, unknown>;
  json_schema?: Record<string, unknown>;
  /** Only for `api: completions` (absent for chat, so chat keys are what they always were): messages is then the one prompt. */
  api?: "completions";
  /**
   * `synthbuild reroll`'s attempt n, only when n ≥ 1 (so no other key changed). Never sent: it is
   * in the key so that a template without `{{ nonce }}` still gets a new draw rather than the
   * cached answer; what the endpoint is sent is then the same text as attempt 0's.
   */
  attempt?: number;
}

export function renderRequest(
  step: GenerateStep,
  scope: Record<string, unknown>,
  provider: ProviderKind = step.model.provider,
  extra?: Record<string, unknown>,
): ChatRequest {
  const messages = step.messages.map((m) => ({ role: m.role, content: renderTemplate(m.template, scope, extra) }));
  const offline = provider === "echo";
  const req: ChatRequest = {
    provider,
    endpoint: offline ? "echo" : step.model.endpoint,
    model: offline ? "echo" : step.model.name,
    messages,
    // Shared, not copied: nothing downstream writes to a request (a million requests, a million copies).
    params: step.model.params,
  };
  if (Object.keys(step.model.extraBody).length) req.extra_body = step.model.extraBody;
  if (step.jsonSchema) req.json_schema = step.jsonSchema;
  if (step.model.api && !offline) req.api = step.model.api;
  return req;
}

/**
 * hash128 of the canonical JSON of `{key: KEY_VERSION, ...req}`. Everything but the messages is
 * the same for every request of a step, so that part is serialised once and the messages are
 * spliced in: the same text canonicalJson would produce, without re-sorting a step's params a
 * million times.
 */
export function requestKey(req: ChatRequest, step?: GenerateStep): string {
  const frame = frameOf(req, step);
  let msgs = "[";
  for (let i = 0; i < req.messages.length; i++) {
    const m = req.messages[i]!;
    if (i) msgs += ",";
    msgs += `{"content":${JSON.stringify(m.content)},"role":${JSON.stringify(m.role)}}`;
  }
  return hash128(frame[0] + msgs + "]" + frame[1]);
}

const MARK = "\u0000messages\u0000";
/** Per step (whose requests differ only in their messages), per provider. */
const frames = new WeakMap<GenerateStep, Map<string, [string, string]>>();

function frameOf(req: ChatRequest, step: GenerateStep | undefined): [string, string] {
  const byProvider = step ? frames.get(step) : undefined;
  // The frame covers everything but the messages, the attempt too: one frame per attempt.
  const which = req.attempt ? `${req.provider}:${req.attempt}` : req.provider;
  const cached = byProvider?.get(which);
  if (cached) return cached;
  const { messages: _, ...rest } = req;
  const text = canonicalJson({ key: KEY_VERSION, ...rest, messages: MARK });
  const at = text.indexOf(JSON.stringify(MARK));
  const f: [string, string] = [text.slice(0, at), text.slice(at + JSON.stringify(MARK).length)];
  if (step) {
    if (!byProvider) frames.set(step, new Map([[which, f]]));
    else byProvider.set(which, f);
  }
  return f;
}

/**
 * The key a request had under key version 1 (no endpoint): only `synthbuild migrate` computes it,
 * to carry answers paid for under 0.1 over to version 2, for the endpoint the user says gave them.
 */
export function requestKeyV1(req: ChatRequest): string {
  const { endpoint: _, ...rest } = req;
  return hashValue({ key: 1, ...rest });
}
