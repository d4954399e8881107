import type { Sample } from "../expand/sample.js";
import type { GenerateStep } from "../manifest/types.js";
import { type Answer, type Resolver, SampleFailure } from "../plan/pipeline.js";
import type { ChatRequest } from "../plan/request.js";
import { BatchCallFailed, type BatchItem, type BatchRunner } from "./batch-runner.js";
import type { BuildResolver } from "./resolver.js";

interface Waiting {
  item: BatchItem;
  waiters: { resolve: (a: Answer | undefined) => void; reject: (e: unknown) => void }[];
}

/**
 * The requests of one segment's samples, for a walk where some steps go by batch. A batched
 * step's misses are held until every sample still moving is waiting (on a batch, or on this
 * queue): then each step's held requests become its batches. A sample that gets its answer moves
 * on to its next step, so the second step's batch is made of the first's answers. Steps that do
 * not batch are asked for directly, as in any build.
 */
export class BatchRound implements Resolver {
  private readonly queued = new Map<string, { step: GenerateStep; items: Map<string, Waiting> }>();
  private blocked = 0;
  private scheduled = false;

  constructor(
    private readonly direct: BuildResolver,
    private readonly runner: BatchRunner,
    private readonly batched: ReadonlySet<string>,
    /** Samples the walk is advancing; each tells `finished()` when it stops. */
    private active: number,
    private readonly signal: AbortSignal,
    /** Keys a pending batch covers (cache/state/batches): collected from it even in a step that does not batch. */
    private readonly pending: ReadonlySet<string> = new Set(),
  ) {}

  async answer(key: string, req: ChatRequest, sample: Sample, step: GenerateStep): Promise<Answer | undefined> {
    if (!this.batched.has(step.id) && !this.pending.has(key)) return this.direct.answer(key, req, sample, step);
    const hit = await this.direct.lookup(key, step);
    if (hit || this.signal.aborted) return hit;
    this.blocked++;
    try {
      return await new Promise<Answer | undefined>((resolve, reject) => {
        let g = this.queued.get(step.id);
        if (!g) this.queued.set(step.id, (g = { step, items: new Map() }));
        let w = g.items.get(key);
        // Samples sending the very same request share its one line.
        if (!w) g.items.set(key, (w = { item: { key, req, sample, step }, waiters: [] }));
        w.waiters.push({ resolve, reject });
        this.check();
      });
    } finally {
      this.blocked--;
    }
  }

  /** A sample the walk advanced has stopped (answered through, dropped, failed or pending). */
  finished(): void {
    this.active--;
    this.check();
  }

  private check(): void {
    if (this.scheduled || !this.queued.size || this.blocked < this.active) return;
    this.scheduled = true;
    // After the turn: a sample answered from the cache a moment ago may be about to ask too.
    setImmediate(() => {
      this.scheduled = false;
      if (this.queued.size && this.blocked >= this.active) this.flush();
    });
  }

  private flush(): void {
    const groups = [...this.queued.values()];
    this.queued.clear();
    for (const g of groups) void this.send(g.step, g.items);
  }

  private async send(step: GenerateStep, items: Map<string, Waiting>): Promise<void> {
    let outcomes: Awaited<ReturnType<BatchRunner["run"]>>;
    // A step that does not batch this build sends here only the keys a pending batch covers.
    const resumeOnly = !this.batched.has(step.id);
    try {
      outcomes = await this.runner.run(
        step,
        [...items.values()].map((w) => w.item),
        resumeOnly,
      );
    } catch (err) {
      if (!(err instanceof BatchCallFailed)) {
        for (const w of items.values()) for (const x of w.waiters) x.reject(err);
        return;
      }
      outcomes = new Map([...items.keys()].map((k) => [k, { failed: err.message }]));
    }
    for (const [key, w] of items) {
      const o = outcomes.get(key) ?? { held: true as const };
      if ("answer" in o) for (const x of w.waiters) x.resolve(o.answer);
      else if ("failed" in o) {
        if (!this.signal.aborted) this.direct.told.onFailure?.(w.item.sample, step, w.item.req, o.failed);
        for (const x of w.waiters) x.reject(new SampleFailure(o.failed));
      } else if (resumeOnly && !this.signal.aborted) {
        // Not in the pending batch after all (its line failed, the batch was let go): asked directly.
        this.direct.answer(key, w.item.req, w.item.sample, step).then(
          (a) => {
            for (const x of w.waiters) x.resolve(a);
          },
          (err) => {
            for (const x of w.waiters) x.reject(err);
          },
        );
      } else for (const x of w.waiters) x.resolve(undefined);
    }
  }
}
