/**
 * `build --limit N`, a trial run: requests for at most N samples, the first N that need one. Not
 * the first N samples of the manifest: after a value is added those are usually all cached, and
 * the trial would try nothing. A sample is admitted by its first request, in the order the walk
 * finds samples missing (sample order, as far as the cache scan keeps it), and keeps its place
 * for its later steps and retries.
 */
export class SampleLimit {
  private readonly admitted = new Set<string>();

  constructor(readonly limit: number) {}

  /** Whether a request of this sample may start; it does not take a place (see `admit`). */
  allows(sample: string): boolean {
    return this.admitted.has(sample) || this.admitted.size < this.limit;
  }

  /** Take a place: called once the request is really going to start. */
  admit(sample: string): void {
    if (this.allows(sample)) this.admitted.add(sample);
  }

  has(sample: string): boolean {
    return this.admitted.has(sample);
  }

  /** Of these samples, missing answers, the ones whose requests can start: those admitted, then the first that fit. */
  preview<T>(pending: readonly T[], id: (p: T) => string): T[] {
    let free = this.limit - this.admitted.size;
    return pending.filter((p) => this.admitted.has(id(p)) || (free > 0 && free-- > 0));
  }
}
