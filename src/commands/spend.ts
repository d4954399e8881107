import type { BuildEvents } from "../events.js";
import type { Budget } from "../execute/budget.js";
import type { RequestEvents } from "../execute/resolver.js";
import { loadPrices, pricesLoaded } from "../plan/prices.js";
import type { ChatRequest } from "../plan/request.js";

type Paid = { inputTokens: number; outputTokens: number; costUsd: number | null };

/**
 * What a build's requests tell the budget and whoever watches: every answer the endpoint sent is
 * spent (a kept one, one that failed its schema, each retry's), and the request's answered or
 * failed event carries all it cost.
 */
export function requestEvents(budget: Budget, events: BuildEvents, signal: AbortSignal, needsPrices = false): RequestEvents {
  const spentOn = new WeakMap<ChatRequest, Paid>();
  const take = (req: ChatRequest): Paid => {
    const p = spentOn.get(req) ?? { inputTokens: 0, outputTokens: 0, costUsd: 0 };
    spentOn.delete(req);
    return p;
  };
  return {
    // Loaded by the first answer that needs it, not before the first request (build.ts).
    beforePaid: needsPrices ? () => (pricesLoaded() ? undefined : loadPrices()) : undefined,
    onPaid: (step, req, a, offline) => {
      const cost = budget.paid(step, req, a.usage, a.text, offline, a.batch !== undefined);
      const p = spentOn.get(req) ?? { inputTokens: 0, outputTokens: 0, costUsd: 0 };
      p.inputTokens += a.usage?.input ?? 0;
      p.outputTokens += a.usage?.output ?? 0;
      p.costUsd = p.costUsd === null || cost === null ? null : p.costUsd + cost;
      spentOn.set(req, p);
    },
    onUnanswered: (_step, req) => budget.release(req),
    onAnswer: (step, req) => events.answered?.({ step: step.id, ...take(req) }),
    onWarn: (message) => events.warn?.(message),
    onFailure: (sample, step, req, reason) => {
      budget.release(req);
      const p = take(req);
      if (!signal.aborted) events.failed?.({ sample: sample.id, step: step.id, reason, ...p });
    },
  };
}
