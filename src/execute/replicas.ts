import type { ModelConfig } from "../manifest/types.js";
import { EndpointRefused, NoResponse, type Provider, RequestError } from "../providers/types.js";
import { displayUrl } from "../util/redact.js";
import type { Breaker } from "./breaker.js";
import { Diverted, type Route, type Scheduler } from "./scheduler.js";

/**
 * A replica that failed `failures` attempts in a row is left out for `afterMs`, then one request
 * probes it; each failed probe doubles the wait, up to `maxMs`. Leaving a replica out is cheap
 * (the others answer), unlike stopping the build, so it takes far less than the breaker does.
 */
export const PROBE_RULE = { failures: 3, afterMs: 2_000, maxMs: 30_000 };

/** One replica's standing in this build, shared by every step whose requests it serves. */
export class ReplicaHealth {
  /** Attempts in a row that failed for the replica's sake: no response, or a 5xx. */
  private misses = 0;
  private outUntil?: number;
  private waitMs: number;
  /** A request is finding out whether the replica is back: no other is sent there meanwhile. */
  private probing = false;
  /** The breaker gave up on it: as far as stopping the build goes, it is down. */
  down = false;
  /** An endpoint-wide refusal (the key, the model...): out for the rest of the build. */
  refused?: EndpointRefused;
  /** Why the last attempt got nothing, for the message when every replica is down. */
  lastWhy = "";
  /** Requests it answered in this build (for the summary). */
  answers = 0;

  constructor(
    readonly url: string,
    private readonly rule = PROBE_RULE,
  ) {
    this.waitMs = rule.afterMs;
  }

  /** Whether a request may be routed here now. */
  usable(now: number): boolean {
    return !this.refused && (this.outUntil === undefined || (now >= this.outUntil && !this.probing));
  }

  /** Out now: refused, or left out and not yet due for its probe. */
  isOut(now: number): boolean {
    return this.refused !== undefined || (this.outUntil !== undefined && now < this.outUntil);
  }

  /** Gone for good, or down by the breaker: what "every replica is down" counts. */
  get lost(): boolean {
    return this.refused !== undefined || this.down;
  }

  /** Which probe `probing` is: a probe that ends late never clears a later one's. */
  private probe = 0;

  /** A request was routed here: after its time out, it is the probe. Returns the probe's number (0: not the probe). */
  chosen(now: number): number {
    if (this.outUntil === undefined || now < this.outUntil) return 0;
    this.probing = true;
    return ++this.probe;
  }

  /**
   * Probe `n`'s request is over. One that never reached the replica (held back by --max-cost, the
   * build stopping, an abort) found nothing out: the next request is the probe, as if it were due.
   */
  probeEnded(n: number): void {
    if (n === this.probe) this.probing = false;
  }

  /** Any response that is not a failure of the replica's: it is there. True if it had been out. */
  responded(): boolean {
    const was = this.outUntil !== undefined;
    this.misses = 0;
    this.outUntil = undefined;
    this.probing = false;
    this.down = false;
    this.waitMs = this.rule.afterMs;
    return was;
  }

  /** An attempt failed for the replica's sake. True when this takes it out (said once, not at each failed probe). */
  failed(now: number): boolean {
    this.misses++;
    const probe = this.probing;
    this.probing = false;
    if (!probe && (this.outUntil !== undefined || this.misses < this.rule.failures)) return false;
    this.outUntil = now + this.waitMs;
    this.waitMs = Math.min(this.waitMs * 2, this.rule.maxMs);
    return !probe;
  }

  /** How long until it is probed again, for the warning. */
  retryInMs(now: number): number {
    return Math.max(0, (this.outUntil ?? now) - now);
  }
}

/** A replica as one step's requests see it: its own config, client, scheduler and breaker. */
export interface Replica {
  readonly cfg: ModelConfig;
  readonly provider: Promise<Provider>;
  readonly scheduler: Scheduler;
  readonly breaker: Breaker;
  readonly health: ReplicaHealth;
}

/** Failures that are the replica's, not the request's: another replica may well answer. */
export function replicaFailure(err: RequestError): boolean {
  return err instanceof NoResponse || (err.status !== undefined && (err.status >= 500 || err.status === 408));
}

/**
 * The replicas one step's requests are spread over (a single endpoint is a set of one). A
 * request goes to the least loaded usable replica it has not tried (in flight and queued per
 * slot; ties to the first listed); one that fails there for the replica's sake, or is refused
 * with a 429 while another has room, moves on at once to one it has not tried, and backs off as
 * with one endpoint once it has tried them all. Only when every replica is lost does the build stop.
 */
export class ReplicaSet {
  /** Requests waiting for a slot at any replica, first come first served. */
  private readonly waiting: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(
    readonly replicas: readonly Replica[],
    private readonly signal?: AbortSignal,
  ) {
    if (!this.many) return;
    for (const r of replicas) r.scheduler.onFree(() => this.waiting.shift()?.resolve());
    signal?.addEventListener("abort", () => {
      for (const w of this.waiting.splice(0)) w.reject(new RequestError("aborted", false));
    });
  }

  get many(): boolean {
    return this.replicas.length > 1;
  }

  /** Every client made (an API key missing is the user's error, before any request). */
  async ready(): Promise<Provider[]> {
    return Promise.all(this.replicas.map((r) => r.provider));
  }

  /**
   * Run a request on the replica it goes to, once one has a free slot. While every replica is
   * busy the request waits here, not in one replica's queue: a queue at a slow replica would be
   * the build's tail while a fast one sits idle. `run` is called synchronously with the choice,
   * so the slot is taken before any other request chooses.
   */
  async send<T>(tried: ReadonlySet<Replica>, run: (r: Replica) => Promise<T>): Promise<T> {
    let woken = false;
    for (;;) {
      const now = Date.now();
      const r = this.choose(tried, now);
      if (!this.many || r.scheduler.load < 1) {
        const probe = r.health.chosen(now);
        if (!probe) return run(r);
        // A probe that went out and failed or was answered has already said so (failed(), responded()).
        return run(r).finally(() => r.health.probeEnded(probe));
      }
      if (this.signal?.aborted) throw new RequestError("aborted", false);
      // A slot this request may not take (at a replica it has tried) is passed on to the next.
      if (woken && this.replicas.some((o) => o.health.usable(now) && o.scheduler.load < 1)) this.waiting.shift()?.resolve();
      await new Promise<void>((resolve, reject) => {
        const w = { resolve, reject };
        if (woken) this.waiting.unshift(w);
        else this.waiting.push(w);
      });
      woken = true;
    }
  }

  /**
   * Send one request, moved between replicas as `divert` says (`may`: whether it may still move).
   * What it carries from one replica to the next are its attempts and the failures counted against
   * its retries: a request whose replicas fail by turns fails after its retries, as at one endpoint.
   */
  async route<T>(run: (r: Replica, route: Route | undefined) => Promise<T>, may: () => boolean = () => true): Promise<T> {
    const tried = new Set<Replica>();
    let attempts: RequestError[] = [];
    let counted = 0;
    for (;;) {
      try {
        return await this.send(tried, (r) => {
          tried.add(r);
          return run(r, this.many ? { attempts, counted, divert: (e) => may() && this.divert(r, e, tried, Date.now()) } : undefined);
        });
      } catch (err) {
        if (!(err instanceof Diverted)) throw err;
        attempts = err.attempts;
        counted = err.counted;
      }
    }
  }

  /** Where a request that has tried `tried` would go now: the least loaded usable replica, preferring untried ones. */
  choose(tried: ReadonlySet<Replica>, now: number): Replica {
    const live = this.replicas.filter((r) => r.health.usable(now));
    const fresh = live.filter((r) => !tried.has(r));
    // Every replica out: the request waits on one as it would on a single endpoint, and the breakers decide.
    const pool = fresh.length ? fresh : live.length ? live : this.replicas.filter((r) => !r.health.refused);
    return leastLoaded(pool.length ? pool : this.replicas);
  }

  /** Whether a request that just failed on `from` should go to another replica now. */
  divert(from: Replica, err: RequestError, tried: ReadonlySet<Replica>, now: number): boolean {
    // A request's own end (its time budget used up, held back, the build stopping) is not a replica's.
    if (!this.many || (!err.retryable && !(err instanceof EndpointRefused))) return false;
    const others = this.replicas.filter((r) => r !== from && r.health.usable(now));
    if (err instanceof EndpointRefused || err instanceof ReplicaOut) return others.length > 0;
    const untried = others.filter((r) => !tried.has(r));
    if (replicaFailure(err)) return untried.length > 0;
    // Waiting for a slot here is waiting for nothing while another replica has one free.
    if (err.status === 429) return untried.some((r) => r.scheduler.load < 1);
    return false;
  }

  /** Another replica could take a request queued on `r` once `r` has gone out. */
  hasAlternative(r: Replica, now: number): boolean {
    return this.many && this.replicas.some((o) => o !== r && o.health.usable(now));
  }

  get allLost(): boolean {
    return this.replicas.every((r) => r.health.lost);
  }

  /** The addresses, as they may be shown: one, or "A, B and C". */
  get where(): string {
    const urls = this.replicas.map((r) => displayUrl(r.health.url));
    return urls.length === 1 ? urls[0]! : `${urls.slice(0, -1).join(", ")} and ${urls.at(-1)}`;
  }
}

function leastLoaded(rs: readonly Replica[]): Replica {
  let best = rs[0]!;
  for (const r of rs) if (r.scheduler.load < best.scheduler.load) best = r;
  return best;
}

/** A request queued at a replica that went out meanwhile: sent to another instead (never counted as a failure). */
export class ReplicaOut extends RequestError {
  constructor() {
    super("the replica was taken out", true);
  }
}
