/**
 * What a build tells whoever is watching. The library never prints: the CLI turns these into a
 * progress bar or log lines; a library user may ignore them.
 */
export interface BuildEvents {
  /** Something worth telling a person that is not an error (a corrupt cache entry, waiting for a lock). */
  warn?(message: string): void;
  /** How the build decided what to do: why it is, or is not, already up to date (`build --verbose`). */
  decided?(message: string): void;
  /**
   * Requests this build will make, added to the progress total: before the first request when a
   * dedupe sits between generate steps (then an upper bound), else once the cache scan is done
   * (some may have started). It adds again only for a further `target:` wave, or when cache
   * entries vanished during the build.
   */
  planned?(requests: number): void;
  /** Requests announced by `planned` that will not be made (a dedupe dropped their samples, an earlier step failed): the total shrinks. */
  unplanned?(requests: number): void;
  /** A request got its answer. */
  answered?(info: { step: string; inputTokens: number; outputTokens: number; costUsd: number | null }): void;
  /** A batch of the Batch API was submitted or moved on (its status, or how many of its requests are done). */
  batch?(info: { step: string; id: string; status: string; total: number; completed: number; failed: number }): void;
  retried?(info: { step: string; attempt: number; delayMs: number; reason: string }): void;
  /** A request failed; what its attempts' answers cost (answers that failed their schema are paid too). */
  failed?(info: { sample: string; step: string; reason: string; inputTokens?: number; outputTokens?: number; costUsd?: number | null }): void;
}
