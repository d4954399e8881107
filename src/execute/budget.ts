import type { GenerateStep } from "../manifest/types.js";
import { costOf, priceOf } from "../plan/prices.js";
import type { ChatRequest } from "../plan/request.js";

/**
 * --max-cost: every attempt at a request (the first and each retry) starts only if the spend so
 * far, plus what the attempts in flight may cost (their input and max_tokens at list price),
 * still fits. Every answer the endpoint sent is paid for, whether or not it is kept: one that
 * fails its schema is spent as much as one that passes. Real usage replaces the reservation when
 * the answer arrives; an attempt that got no answer (an error, a refusal) costs nothing.
 */
export class Budget {
  spent: number | null = 0;
  reached = false;
  private reserved = 0;
  private readonly reservations = new WeakMap<ChatRequest, number>();

  constructor(
    private readonly max: number | undefined,
    private readonly offline: boolean,
  ) {}

  /** Whether an attempt at `req` may start; if so, its most it can cost is reserved until it ends. */
  mayStart(step: GenerateStep, req: ChatRequest, batch = false): boolean {
    if (this.max === undefined) return true;
    this.release(req);
    const output = Number(req.params.max_tokens ?? req.params.max_completion_tokens ?? 1000);
    const estimate = costOf(priceOf(step.model, this.offline, batch), inputEstimate(req), output) ?? 0;
    if ((this.spent ?? 0) + this.reserved + estimate > this.max) {
      this.reached = true;
      return false;
    }
    this.reserved += estimate;
    this.reservations.set(req, estimate);
    return true;
  }

  /**
   * An answer arrived for `req` (valid or not): its reservation goes, its cost is spent. Without
   * usage in the answer, its cost is estimated from the lengths (~4 characters a token).
   */
  paid(
    step: GenerateStep,
    req: ChatRequest,
    usage: { input: number; output: number } | undefined,
    text: string,
    offline: boolean,
    batch = false,
  ): number | null {
    this.release(req);
    const u = usage ?? { input: inputEstimate(req), output: Math.ceil(text.length / 4) };
    const cost = costOf(priceOf(step.model, offline || this.offline, batch), u.input, u.output);
    if (cost === null) this.spent = null;
    else if (this.spent !== null) this.spent += cost;
    return cost;
  }

  /** The attempt ended without an answer (or never started): nothing spent, the reservation goes. */
  release(req: ChatRequest): void {
    this.reserved = Math.max(0, this.reserved - (this.reservations.get(req) ?? 0));
    this.reservations.delete(req);
  }
}

function inputEstimate(req: ChatRequest): number {
  return Math.ceil(req.messages.reduce((n, m) => n + m.content.length, 0) / 4);
}
