import type { GenerateStep } from "../manifest/types.js";
import { costOf, priceOf } from "../plan/prices.js";
import type { ChatRequest } from "../plan/request.js";

/**
 * --max-cost: a request starts only if the spend so far, plus what the requests in flight may
 * cost (their input and max_tokens at list price), still fits; real usage replaces the estimate
 * when the answer arrives.
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

  mayStart(step: GenerateStep, req: ChatRequest): boolean {
    if (this.max === undefined) return true;
    const input = Math.ceil(req.messages.reduce((n, m) => n + m.content.length, 0) / 4);
    const output = Number(req.params.max_tokens ?? req.params.max_completion_tokens ?? 1000);
    const estimate = costOf(priceOf(step.model, this.offline), input, output) ?? 0;
    if ((this.spent ?? 0) + this.reserved + estimate > this.max) {
      this.reached = true;
      return false;
    }
    this.reserved += estimate;
    this.reservations.set(req, estimate);
    return true;
  }

  /** The request is over (answered or failed): its reservation goes, its real cost (if any) stays. */
  settle(step: GenerateStep, req: ChatRequest, usage: { input: number; output: number } | undefined, offline: boolean): number | null {
    this.reserved = Math.max(0, this.reserved - (this.reservations.get(req) ?? 0));
    this.reservations.delete(req);
    if (!usage) return 0;
    const cost = costOf(priceOf(step.model, offline || this.offline), usage.input, usage.output);
    if (cost === null) this.spent = null;
    else if (this.spent !== null) this.spent += cost;
    return cost;
  }
}
