import type { ModelConfig } from "../../src/manifest/types.js";

/** A resolved model as a unit test needs one: gpt-4o-mini at OpenAI, with what the test changes. */
export const model = (o: Partial<ModelConfig>): ModelConfig => ({
  provider: "openai",
  name: "gpt-4o-mini",
  endpoint: "https://api.openai.com/v1",
  apiKeyEnv: "OPENAI_API_KEY",
  headers: {},
  extraBody: {},
  params: {},
  concurrency: 1,
  timeoutS: 60,
  totalTimeoutS: 180,
  retries: 0,
  ...o,
});
