import { EndpointError } from "../errors.js";
import type { GenerateStep, ModelConfig } from "../manifest/types.js";
import type { EndpointProblem } from "../providers/types.js";
import { displayUrl } from "../util/redact.js";

export const OPENAI_URL = "https://api.openai.com/v1";

/** The endpoint a step's requests go to, as it may be shown. */
export function endpointOf(step: GenerateStep): string {
  return displayUrl(step.model.baseUrl || OPENAI_URL);
}

/**
 * What stopped the build: a refusal of every request (EndpointProblem), no connection or no
 * answer, or, for the Batch API, no Batches API at the address, polls unanswered past the
 * outage a build rides out, or an id that holds a secret (which must not be written to disk).
 */
export type StopProblem = EndpointProblem | "unreachable" | "no-answer" | "batch-path" | "batch-outage" | "batch-secret";

const STOPPED = "the build stopped: no request was started after this; answers received before it are cached, and dist/ and dataset.lock are unchanged";

/**
 * One message for an answer that concerns the whole endpoint: what happened, to which endpoint
 * and model, and what to do. `detail` is the endpoint's own words (already redacted).
 */
export function endpointError(
  problem: StopProblem,
  detail: string,
  step: GenerateStep,
  where?: string,
  cfg: ModelConfig = step.model,
  keySet = true,
): EndpointError {
  // `where`: the replicas, when a step spreads its requests over several (all of them lost).
  const url = where ?? endpointOf(step);
  const model = step.model.name;
  // `cfg`: the replica that answered, whose own key variable the hint names.
  const [what, hint] =
    problem === "auth" && !keySet
      ? // A base_url with no key set sends a placeholder (local servers take any): this endpoint wants a real one.
        [`the endpoint wants an API key, and ${cfg.apiKeyEnv} is not set (${detail})`, `export ${cfg.apiKeyEnv}=<a key that ${url} accepts>`]
      : describe(problem, detail, step, url, cfg.apiKeyEnv);
  return new EndpointError(`${what}\n  endpoint ${url}, model ${model}, step '${step.id}'\n  ${STOPPED}`, hint, problem, url, model, step.id);
}

function describe(problem: StopProblem, detail: string, step: GenerateStep, url: string, key: string): [string, string] {
  switch (problem) {
    case "auth":
      return [`the endpoint rejected the API key (${detail})`, `check ${key}: it must hold a key that ${url} accepts`];
    case "forbidden":
      return [
        `the endpoint refused access (${detail})`,
        `the key's project or organisation may not have access to ${step.model.name}, or the endpoint refuses your region; check the key's permissions`,
      ];
    case "quota":
      return [`the account has no quota or credit left (${detail})`, "add credit or raise the account's limit, then build again: answers so far are cached"];
    case "model":
      return [`the endpoint does not know model '${step.model.name}' (${detail})`, "check model.name: the endpoint's GET /models lists the models it serves"];
    case "path":
      return [
        `there is no chat completions API at ${url}/chat/completions (${detail})`,
        "check model.base_url: OpenAI-compatible servers usually want it to end in /v1",
      ];
    case "schema":
      return [
        `the endpoint rejected step '${step.id}'s json_schema (${detail})`,
        "fix the step's json_schema (strict structured output wants every property listed in required and additionalProperties: false), or remove it if the endpoint does not support structured output",
      ];
    case "unreachable":
      return [
        `cannot reach ${url}: ${detail}`,
        `is the server running, and is ${step.model.replicas ? "model.endpoints" : "model.base_url"} right? Build again once it answers: answers so far are cached`,
      ];
    case "no-answer":
      return [
        `no answer from ${url}: ${detail}`,
        "check that the server is answering; if its answers take longer than model.timeout_s, raise it. Answers so far are cached",
      ];
    case "batch-path":
      return [
        `there is no Batch API (Files and Batches) at ${url} (${detail})`,
        "check model.base_url; an endpoint that serves chat completions alone needs model.mode: direct",
      ];
    case "batch-outage":
      return [
        `the Batch API at ${url} has not answered for ${detail}`,
        "batches already submitted keep running at the endpoint (`synthbuild status` lists them): build again once it answers, and the build collects them without submitting them again",
      ];
    case "batch-secret":
      return [
        `the endpoint put a secret (the API key, or another value the environment holds) into the ${detail}`,
        "ids are written to cache/state/batches and dataset.lock, so this one was not kept; use an endpoint (or gateway) that does not echo credentials into ids, or model.mode: direct",
      ];
  }
}
