import { performance } from "node:perf_hooks";

/**
 * Calls `fn` once the event loop has been nearly idle for a few milliseconds: for work that must
 * not delay what is on the wire or about to be (a request whose connection is still opening is
 * "sent" as far as the caller knows, yet waits for the loop). A loop that is never idle never
 * calls it, nor does a process that ends first (the timer does not keep it alive), and it stops
 * looking once `wanted` says no: the caller must be able to do without.
 */
export function whenIdle(fn: () => void, wanted: () => boolean = () => true, windowMs = 5): void {
  let last = performance.eventLoopUtilization();
  const check = () => {
    if (!wanted()) return;
    const now = performance.eventLoopUtilization();
    const since = performance.eventLoopUtilization(now, last);
    last = now;
    if (since.utilization < 0.1) fn();
    else setTimeout(check, windowMs).unref();
  };
  setTimeout(check, windowMs).unref();
}
