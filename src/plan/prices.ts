import type { ModelConfig } from "../manifest/types.js";

/**
 * USD per million tokens (input, output), list prices of the standard tier. A manifest's
 * model.price overrides this; a model not listed has no cost estimate (null), never a guess.
 * Keys match a model name exactly or as the prefix of a dated snapshot (gpt-4o-mini-2024-07-18).
 */
const PRICES: Record<string, [number, number]> = {
  "gpt-5": [1.25, 10],
  "gpt-5-mini": [0.25, 2],
  "gpt-5-nano": [0.05, 0.4],
  "gpt-4.1": [2, 8],
  "gpt-4.1-mini": [0.4, 1.6],
  "gpt-4.1-nano": [0.1, 0.4],
  "gpt-4o": [2.5, 10],
  "gpt-4o-mini": [0.15, 0.6],
  "gpt-4-turbo": [10, 30],
  "gpt-3.5-turbo": [0.5, 1.5],
  o1: [15, 60],
  "o1-mini": [1.1, 4.4],
  o3: [2, 8],
  "o3-mini": [1.1, 4.4],
  "o4-mini": [1.1, 4.4],
};

export interface Price {
  inputPerMtok: number;
  outputPerMtok: number;
}

export function priceOf(model: ModelConfig, offline: boolean): Price | undefined {
  if (offline || model.provider === "echo" || model.provider === "ollama") return { inputPerMtok: 0, outputPerMtok: 0 };
  if (model.price) return model.price;
  const name = model.name;
  const key = Object.keys(PRICES)
    .filter((k) => name === k || name.startsWith(`${k}-20`))
    .sort((a, b) => b.length - a.length)[0];
  if (!key) return undefined;
  const [i, o] = PRICES[key]!;
  return { inputPerMtok: i, outputPerMtok: o };
}

export function costOf(price: Price | undefined, input: number, output: number): number | null {
  if (!price) return null;
  return (input * price.inputPerMtok + output * price.outputPerMtok) / 1e6;
}
