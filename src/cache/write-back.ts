import { type RetryPolicy, withRetry } from "./remote/retry.js";
import { type Remote, RemoteAccessError } from "./remote/types.js";
import type { Cache } from "./store.js";

export interface WriteBackOptions extends RetryPolicy {
  /** Uploads in flight at once (default 4: the build's requests come first). */
  concurrency?: number;
  /** Keys waiting at most; past that, a key is reported as not uploaded rather than held (default 100,000). */
  maxQueue?: number;
  /** After this many keys in a row fail after their retries, the remote is taken as down (default 3). */
  giveUpAfter?: number;
}

export interface WriteBackReport {
  uploaded: string[];
  /** Already on the remote (another writer was first). */
  present: string[];
  notUploaded: { key: string; reason: string }[];
  bytes: number;
}

/**
 * Uploads answers in the background while a build runs. `add()` returns at once and never
 * throws; the bytes are read from the local cache when their turn comes, so the queue holds
 * keys, not answers. A remote that refuses us, or stays unreachable for several keys in a row, is
 * given up on: the rest are reported as not uploaded without waiting on it. `flush()` waits for
 * the queue and says what was and was not uploaded, and why; it never throws either.
 */
export class WriteBack {
  private readonly queue: string[] = [];
  private readonly seen = new Set<string>();
  private active = 0;
  private failuresInARow = 0;
  private down?: string;
  private readonly waiting: (() => void)[] = [];
  private readonly report: WriteBackReport = { uploaded: [], present: [], notUploaded: [], bytes: 0 };

  constructor(
    private readonly cache: Cache,
    private readonly remote: Remote,
    private readonly opts: WriteBackOptions = {},
  ) {}

  add(key: string): void {
    if (this.seen.has(key)) return;
    this.seen.add(key);
    if (this.down) return void this.report.notUploaded.push({ key, reason: this.down });
    if (this.queue.length >= (this.opts.maxQueue ?? 100_000)) return void this.report.notUploaded.push({ key, reason: "the upload queue was full" });
    this.queue.push(key);
    this.pump();
  }

  /** Wait for every key added so far; the report covers all of them. */
  async flush(): Promise<WriteBackReport> {
    if (this.active || this.queue.length) await new Promise<void>((resolve) => this.waiting.push(resolve));
    const r = this.report;
    return {
      uploaded: [...r.uploaded].sort(),
      present: [...r.present].sort(),
      notUploaded: [...r.notUploaded].sort((a, b) => (a.key < b.key ? -1 : 1)),
      bytes: r.bytes,
    };
  }

  private pump(): void {
    while (this.active < (this.opts.concurrency ?? 4) && this.queue.length) {
      const key = this.queue.shift()!;
      this.active++;
      void this.upload(key).finally(() => {
        this.active--;
        this.pump();
        if (!this.active && !this.queue.length) for (const resolve of this.waiting.splice(0)) resolve();
      });
    }
  }

  private async upload(key: string): Promise<void> {
    if (this.down) return void this.report.notUploaded.push({ key, reason: this.down });
    try {
      const bytes = await this.cache.readRaw(key);
      if (!bytes) return void this.report.notUploaded.push({ key, reason: "not in the local cache" });
      const outcome = await withRetry(() => this.remote.putIfAbsent(key, bytes), { ...this.opts, retries: this.opts.retries ?? 3 });
      this.failuresInARow = 0;
      if (outcome === "stored") {
        this.report.uploaded.push(key);
        this.report.bytes += bytes.byteLength;
      } else this.report.present.push(key);
    } catch (err) {
      const reason = (err as Error).message;
      this.report.notUploaded.push({ key, reason });
      if (err instanceof RemoteAccessError || ++this.failuresInARow >= (this.opts.giveUpAfter ?? 3)) this.giveUp(reason);
    }
  }

  private giveUp(reason: string): void {
    this.down = `not attempted: the remote was given up on (${reason})`;
    for (const key of this.queue.splice(0)) this.report.notUploaded.push({ key, reason: this.down });
  }
}
