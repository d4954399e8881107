import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { type FromModuleWorker, startModuleWorker, type ToModuleWorker } from "../manifest/module-thread.js";
import type { RunStep } from "../manifest/types.js";
import type { RunOutcome } from "../plan/pipeline.js";

/**
 * Run steps' modules, called in worker threads (manifest/module-worker.ts), so that a module
 * cannot write to stdout, end the build with process.exit(), or hold the build (and Ctrl-C) in
 * an endless loop. What each misbehaviour means for the sample:
 *
 * - it throws, or returns neither text nor `{ drop }`: the sample fails with the message;
 * - it calls process.exit(): the sample fails, naming the module (the thread goes on);
 * - it runs longer than the step's `timeout_s`: the sample fails, its thread is terminated and
 *   another is started for the calls that follow;
 * - its thread dies anyway (an uncaught error in a callback, out of memory): the call it was
 *   running fails with the reason, the calls queued behind it go to another thread;
 * - Ctrl-C: every thread is terminated at once and the samples not done are left pending.
 *
 * Threads start only when a call comes, up to one per core. Each has a short queue of calls,
 * sent many to a message and run one after another: the round trips overlap the calls (about
 * 10 µs of the main thread a call, instead of 60 for a call per round trip), and the call
 * running is always the oldest not answered, so a timeout or a crash is blamed on the right
 * sample.
 */
export class RunPool {
  private readonly size: number;
  private readonly slots: Slot[] = [];
  private readonly queue: Call[] = [];
  private nextId = 0;
  private stopped = false;
  private readonly signal?: AbortSignal;
  private readonly onAbort = () => void this.close();

  constructor(opts: { size?: number; signal?: AbortSignal } = {}) {
    // More threads than cores only adds start-up time and memory: a module's work is CPU.
    this.size = Math.max(1, opts.size ?? Math.min(availableParallelism(), MAX_THREADS));
    this.signal = opts.signal;
    if (opts.signal?.aborted) this.stopped = true;
    opts.signal?.addEventListener("abort", this.onAbort, { once: true });
  }

  run(step: RunStep, vars: Record<string, unknown>): Promise<RunOutcome> {
    if (this.stopped) return Promise.resolve({ interrupted: true });
    return new Promise((resolve) => {
      this.queue.push({ id: this.nextId++, step, vars, resolve });
      // A busy thread is sent more when half its queue is done, many calls in one message.
      if (this.slots.length < this.size || this.slots.some((s) => s.calls.length === 0)) this.dispatch();
    });
  }

  /** Terminate every thread; calls not answered are interrupted. The end of a walk, or Ctrl-C. */
  async close(): Promise<void> {
    this.stopped = true;
    this.signal?.removeEventListener("abort", this.onAbort);
    const slots = this.slots.splice(0);
    for (const call of [...slots.flatMap((s) => s.calls), ...this.queue.splice(0)]) call.resolve({ interrupted: true });
    await Promise.all(slots.map((s) => this.retire(s)));
  }

  private dispatch(): void {
    // One message per thread and round, however many calls it carries: posting costs more than a call.
    const posts = new Map<Slot, Call[]>();
    while (this.queue.length && !this.stopped) {
      let slot = this.slots.reduce<Slot | undefined>((best, s) => (!best || s.calls.length < best.calls.length ? s : best), undefined);
      if (!slot || (slot.calls.length > 0 && this.slots.length < this.size)) slot = this.start();
      if (slot.calls.length >= QUEUE_PER_THREAD) break;
      const call = this.queue.shift()!;
      slot.calls.push(call);
      if (slot.calls.length === 1) this.time(slot);
      const post = posts.get(slot);
      if (post) post.push(call);
      else posts.set(slot, [call]);
    }
    for (const [slot, calls] of posts)
      slot.worker.postMessage({ kind: "calls", calls: calls.map((c) => ({ id: c.id, url: c.step.url, vars: c.vars })) } satisfies ToModuleWorker);
  }

  private start(): Slot {
    const slot: Slot = { worker: startModuleWorker(), calls: [], retired: false, online: false };
    // A thread's own start-up on a busy machine is not the module's time: clocks start once it runs.
    slot.worker.once("online", () => {
      slot.online = true;
      this.time(slot);
    });
    slot.worker.on("message", (msg: FromModuleWorker) => this.answered(slot, msg));
    slot.worker.on("error", (err) => this.lost(slot, `crashed its worker thread: ${err.message}`));
    slot.worker.on("exit", (code) => this.lost(slot, `ended its worker thread (exit code ${code})`));
    this.slots.push(slot);
    return slot;
  }

  /** The oldest call of a slot is the one running: its clock starts when the one before it ends. */
  private time(slot: Slot): void {
    clearTimeout(slot.timer);
    const call = slot.calls[0];
    if (!call || !slot.online) return;
    slot.timer = setTimeout(() => {
      this.lost(slot, `did not return within ${call.step.timeoutS} s (run.timeout_s); its thread was replaced`);
    }, call.step.timeoutS * 1000);
  }

  private answered(slot: Slot, msg: FromModuleWorker): void {
    if (slot.retired) return; // timed out, or closed, while this answer was on its way
    if ("crashed" in msg) {
      this.lost(slot, `crashed its worker thread: ${msg.crashed}`);
      return;
    }
    const call = slot.calls.shift();
    if (!call || call.id !== msg.id) throw new Error(`run worker answered call ${msg.id} out of order`);
    this.time(slot);
    call.resolve(outcome(call.step.module, msg));
    // Refilled by half a queue at a time: a message per call would cost more than the call.
    if (slot.calls.length <= QUEUE_PER_THREAD / 2) this.dispatch();
  }

  /** A slot's thread is gone or must go: its running call fails, the ones queued behind it move on. */
  private lost(slot: Slot, why: string): void {
    if (slot.retired) return;
    const [running, ...waiting] = slot.calls.splice(0);
    this.slots.splice(this.slots.indexOf(slot), 1);
    void this.retire(slot);
    running?.resolve({ failed: `${running.step.module} ${why}` });
    this.queue.unshift(...waiting);
    this.dispatch();
  }

  private async retire(slot: Slot): Promise<void> {
    slot.retired = true;
    clearTimeout(slot.timer);
    await slot.worker.terminate();
  }
}

interface Call {
  readonly id: number;
  readonly step: RunStep;
  readonly vars: Record<string, unknown>;
  readonly resolve: (outcome: RunOutcome) => void;
}

interface Slot {
  readonly worker: Worker;
  /** Posted and not yet answered, oldest (the one running) first. */
  readonly calls: Call[];
  timer?: NodeJS.Timeout;
  retired: boolean;
  /** The thread has started running: a call's clock starts no earlier. */
  online: boolean;
}

const MAX_THREADS = 8;
const QUEUE_PER_THREAD = 32;

function outcome(module: string, msg: FromModuleWorker): RunOutcome {
  if ("text" in msg) return { text: msg.text };
  if ("drop" in msg) return { drop: msg.drop };
  if ("threw" in msg) return { failed: `${module} threw: ${msg.threw}` };
  if ("invalid" in msg) return { failed: `${module} returned ${msg.invalid}; expected text or { drop: "reason" }` };
  if ("exited" in msg)
    return { failed: `${module} called process.exit(${msg.exited}); a run module returns its text, or { drop: "why" }, and cannot end the build` };
  if ("loadError" in msg) return { failed: `${module} failed to load: ${msg.loadError}` };
  throw new Error(`unexpected answer from a run worker: ${JSON.stringify(msg)}`);
}
