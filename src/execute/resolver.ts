import type { Cache, CacheEntry } from "../cache/store.js";
import { SynthbuildError } from "../errors.js";
import type { Sample } from "../expand/sample.js";
import type { GenerateStep } from "../manifest/types.js";
import type { Answer, Resolver } from "../plan/pipeline.js";
import type { ChatRequest } from "../plan/request.js";
import { requestTokens } from "../plan/tokens.js";
import { type ProviderAnswer, RequestError } from "../providers/types.js";
import { validateJsonAnswer } from "./json-answer.js";
import type { ProviderPool } from "./providers.js";
import { RetriesExhausted } from "./scheduler.js";

export function answerFromEntry(e: CacheEntry, cached: boolean): Answer {
  const u = e.response.usage;
  return {
    text: e.response.text,
    finishReason: e.response.finish_reason,
    usage: u ? { input: u.input_tokens, output: u.output_tokens } : undefined,
    model: e.response.model ?? undefined,
    fingerprint: e.response.system_fingerprint ?? undefined,
    offline: e.offline,
    cached,
  };
}

/** Answers from the cache only; a miss is undefined. What `plan`, `--frozen` and `show` use. */
export class CacheResolver implements Resolver {
  constructor(
    private readonly cache: Cache,
    /** false: leave corrupt entries in place (verify only looks). */
    private readonly evict = true,
  ) {}

  async answer(key: string): Promise<Answer | undefined> {
    const e = await this.cache.get(key, { evict: this.evict });
    return e ? answerFromEntry(e, true) : undefined;
  }
}

export interface RequestEvents {
  /** A request is about to be sent (after the budget check). */
  onStart?(step: GenerateStep): void;
  /** The endpoint answered an attempt: paid for, whether or not the answer is then kept. */
  onPaid?(step: GenerateStep, req: ChatRequest, answer: ProviderAnswer, offline: boolean): void;
  /** An attempt ended without an answer (an error or a refusal). */
  onUnanswered?(step: GenerateStep, req: ChatRequest): void;
  onAnswer?(step: GenerateStep, req: ChatRequest, answer: ProviderAnswer, offline: boolean): void;
  onFailure?(sample: Sample, step: GenerateStep, req: ChatRequest, message: string): void;
}

/**
 * Cache first; a miss goes through the step's scheduler to its provider and is stored the moment
 * it arrives. Identical requests within one build are sent once.
 */
export class BuildResolver implements Resolver {
  private readonly inflight = new Map<string, Promise<Answer | undefined>>();

  constructor(
    private readonly cache: Cache,
    private readonly pool: ProviderPool,
    private readonly signal: AbortSignal,
    private readonly events: RequestEvents = {},
    /**
     * Return false to leave a request unsent (--limit, the --max-cost budget); the sample stays
     * pending. Asked again before each retry (a retry is paid for too).
     */
    private readonly mayStart: (step: GenerateStep, req: ChatRequest, sample: Sample) => boolean = () => true,
    /** A tokenizer, when some step has a tpm limit to pace. */
    private readonly countTokens?: (text: string) => number,
  ) {}

  private estimate(req: ChatRequest): number {
    return estimateTokens(req, this.countTokens);
  }

  async answer(key: string, req: ChatRequest, sample: Sample, step: GenerateStep): Promise<Answer | undefined> {
    const hit = await this.cache.get(key);
    if (hit) return answerFromEntry(hit, true);
    if (this.signal.aborted) return undefined;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.request(key, req, sample, step);
      this.inflight.set(key, p);
      void p.then(
        () => this.inflight.delete(key),
        () => this.inflight.delete(key),
      );
    }
    return p;
  }

  private async request(key: string, req: ChatRequest, sample: Sample, step: GenerateStep): Promise<Answer | undefined> {
    if (!this.mayStart(step, req, sample)) return undefined;
    const provider = await this.pool.providerFor(step);
    const scheduler = this.pool.schedulerFor(step);
    const started = Date.now();
    let answer: ProviderAnswer;
    let attempts = 0;
    try {
      answer = await scheduler.run(
        (signal) => {
          if (attempts++ > 0 && !this.mayStart(step, req, sample)) return Promise.reject(new HeldBack());
          this.events.onStart?.(step);
          return provider.complete(req, signal).then(
            (a) => {
              this.events.onPaid?.(step, req, a, provider.offline);
              if (req.json_schema) validateJsonAnswer(a.text, req.json_schema, !provider.offline);
              return a;
            },
            (err) => {
              this.events.onUnanswered?.(step, req);
              throw err;
            },
          );
        },
        this.estimate(req),
        (a) => (a.usage ? a.usage.input + a.usage.output : undefined),
        (a) => a.limits,
      );
    } catch (err) {
      // The budget ran out before a retry: the sample waits for the next build, like one never sent.
      if (err instanceof RetriesExhausted && err.attempts.at(-1) instanceof HeldBack) return undefined;
      if (this.signal.aborted) {
        this.events.onFailure?.(sample, step, req, "aborted");
        return undefined;
      }
      if (err instanceof SynthbuildError) throw err;
      const message = err instanceof RetriesExhausted ? err.message : (err as Error).message;
      this.events.onFailure?.(sample, step, req, message);
      throw new Error(message);
    }
    const entry: CacheEntry = {
      format: 1,
      key,
      request: req,
      response: {
        text: answer.text,
        finish_reason: answer.finishReason,
        usage: answer.usage ? { input_tokens: answer.usage.input, output_tokens: answer.usage.output } : null,
        model: answer.model ?? null,
        system_fingerprint: answer.fingerprint ?? null,
        request_id: answer.requestId ?? null,
      },
      offline: provider.offline,
      created_at: new Date().toISOString(),
      duration_ms: Date.now() - started,
    };
    await this.cache.put(entry);
    this.events.onAnswer?.(step, req, answer, provider.offline);
    return answerFromEntry(entry, false);
  }
}

/** A retry the budget does not allow (not retryable: the sample stays pending). */
class HeldBack extends RequestError {
  constructor() {
    super("held back by --max-cost", false);
  }
}

/**
 * Tokens a request will use, for tpm pacing before the real usage is known: its input counted
 * with the tokenizer when one is loaded (builds with a tpm limit load it), else ~4 characters a
 * token; plus max_tokens, what the answer may use at most.
 */
export function estimateTokens(req: ChatRequest, count?: (text: string) => number): number {
  const input = count ? requestTokens(count, req) : Math.ceil(req.messages.reduce((n, m) => n + m.content.length, 0) / 4);
  return input + Number(req.params.max_tokens ?? req.params.max_completion_tokens ?? 0);
}
