import type { ModelConfig, Step } from "../manifest/types.js";
import { whenIdle } from "../util/when-idle.js";

type PriceBook = typeof import("@pydantic/genai-prices");
let book: PriceBook | undefined;

/**
 * List prices come from pydantic's genai-prices (maintained, ~900 models across providers, data
 * shipped in the package: no network). It costs ~25 ms to load, so only runs that price
 * something load it, and a manifest's model.price overrides it.
 */
export async function loadPrices(): Promise<void> {
  book ??= await import("@pydantic/genai-prices");
}

/**
 * Loads the price book once the event loop goes idle, for a caller whose requests are all out and
 * which would otherwise wait for their answers: the first answer then finds it loaded, and the
 * requests that answer's slot sends next do not wait ~25 ms for it. A failure to load is left to
 * loadPrices() on the first answer, which says it.
 */
export function loadPricesWhenIdle(): void {
  whenIdle(
    () => void loadPrices().catch(() => {}),
    () => !book,
  );
}

/** Whether loadPrices() has been awaited: list prices can be read. */
export function pricesLoaded(): boolean {
  return book !== undefined;
}

/** Whether pricing these steps needs the price book (a model with no model.price, not offline). */
export function needsPriceBook(steps: Step[], offline: boolean): boolean {
  return !offline && steps.some((s) => s.kind === "generate" && s.model.provider === "openai" && !s.model.price);
}

export interface Price {
  inputPerMtok: number;
  outputPerMtok: number;
}

const FREE: Price = { inputPerMtok: 0, outputPerMtok: 0 };
const listed = new Map<string, Price | undefined>();

/** OpenAI's Batch API discount: a request answered by a batch costs half the list price. */
export const BATCH_DISCOUNT = 0.5;

/**
 * USD per million tokens (input, output). Offline, echo and ollama cost nothing; an unknown
 * model has no price (null cost), never a guess. `batch`: as a request of a batch, at the batch
 * discount (of the list price, or of model.price, which is the synchronous price).
 */
export function priceOf(model: ModelConfig, offline: boolean, batch = false): Price | undefined {
  if (offline || model.provider === "echo" || model.provider === "ollama") return FREE;
  const p = model.price ?? listedPrice(model);
  return p && batch ? { inputPerMtok: p.inputPerMtok * BATCH_DISCOUNT, outputPerMtok: p.outputPerMtok * BATCH_DISCOUNT } : p;
}

function listedPrice(model: ModelConfig): Price | undefined {
  const key = `${model.name}\0${model.baseUrl ?? ""}`;
  if (!listed.has(key)) listed.set(key, listPrice(model.name, model.baseUrl || undefined));
  return listed.get(key);
}

function listPrice(name: string, baseUrl: string | undefined): Price | undefined {
  if (!book) throw new Error("loadPrices() must be awaited before a list price is read");
  const { calcPrice } = book;
  // Rates from a small request: models whose price rises with prompt length are priced at their
  // first tier. A gateway the book knows (OpenRouter, Groq, ...) is priced as that provider; any
  // other endpoint serving a model by an OpenAI name, at OpenAI's list price.
  const at = (options: Parameters<PriceBook["calcPrice"]>[2]) => calcPrice({ input_tokens: 1000, output_tokens: 1000 }, name, options);
  const r = (baseUrl ? at({ providerApiUrl: baseUrl }) : undefined) ?? at({ providerId: "openai" });
  return r ? { inputPerMtok: r.input_price * 1000, outputPerMtok: r.output_price * 1000 } : undefined;
}

export function costOf(price: Price | undefined, input: number, output: number): number | null {
  if (!price) return null;
  return (input * price.inputPerMtok + output * price.outputPerMtok) / 1e6;
}
