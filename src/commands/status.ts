import { setMaxListeners } from "node:events";
import { readBatchRecords, removeBatchRecord } from "../cache/batch-state.js";
import { UsageError } from "../errors.js";
import { ProviderPool } from "../execute/providers.js";
import type { GenerateStep } from "../manifest/types.js";
import { type CommonOptions, openProject } from "./context.js";

export interface StatusOptions extends CommonOptions {
  /** Cancel every pending batch (its answers so far are collected by the next build). */
  cancel?: boolean;
  /**
   * Drop records, the endpoint not asked to cancel anything: the next build asks again for their
   * requests. True: every record; a list: the batches of these ids (batch or input file ids).
   */
  forget?: boolean | string[];
}

export interface BatchStatus {
  /** Absent while the create has not been answered (a build killed between upload and create). */
  id: string | null;
  input_file_id: string;
  step: string;
  endpoint: string;
  model: string;
  /** Lines the batch holds. */
  requests: number;
  /** As the endpoint says now; null when it could not be asked. */
  status: string | null;
  request_counts: { total: number; completed: number; failed: number } | null;
  /** Seconds since it was submitted. */
  age_s: number;
  /** The manifest whose build submitted it, when not this one (a cache shared by checkouts or projects). */
  manifest?: string;
  /** `--cancel` asked the endpoint to cancel it. */
  cancelled?: true;
  /** `--forget` dropped its record. */
  forgotten?: true;
  /** Why the endpoint could not be asked. */
  error?: string;
}

export interface StatusResult {
  batches: BatchStatus[];
}

/**
 * `synthbuild status`: the batches this cache waits for (cache/state/batches), each as its endpoint
 * reports it now; `--cancel` cancels those still running. A build collects what they answered.
 */
export async function status(opts: StatusOptions = {}): Promise<StatusResult> {
  const { manifest: m, paths } = await openProject(opts);
  const env = opts.env ?? process.env;
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  const pool = new ProviderPool(env, { offline: false, signal: controller.signal });
  const out: BatchStatus[] = [];
  const now = Date.now();
  const records = await readBatchRecords(paths.cacheDir);
  const named = (r: (typeof records)[number], id: string) => r.batch_id === id || r.input_file_id === id;
  // Checked before anything is asked or dropped: a mistyped id forgets nothing.
  if (Array.isArray(opts.forget)) {
    const unknown = opts.forget.filter((id) => !records.some((r) => named(r, id)));
    if (unknown.length)
      throw new UsageError(
        `no pending batch ${unknown.join(", ")} in ${paths.cacheDir}: nothing forgotten`,
        records.length ? `the batches this cache waits for: ${records.map((r) => r.batch_id ?? r.input_file_id).join(", ")}` : "this cache waits for no batch",
      );
  }
  for (const r of records) {
    const line: BatchStatus = {
      id: r.batch_id ?? null,
      input_file_id: r.input_file_id,
      step: r.step,
      endpoint: r.endpoint,
      model: r.model,
      requests: r.custom_ids.length,
      status: null,
      request_counts: null,
      age_s: Math.max(0, Math.round((now - Date.parse(r.created_at)) / 1000)),
      ...(r.manifest !== undefined && r.manifest !== m.file ? { manifest: r.manifest } : {}),
    };
    out.push(line);
    // The client (its URL, headers, key) is the step's; a batch of a step no longer in the manifest cannot be asked about.
    const step = m.steps.find((s): s is GenerateStep => s.kind === "generate" && s.id === r.step && s.model.endpoint === r.endpoint);
    if (!step) {
      line.error = `no generate step '${r.step}' at ${r.endpoint} in the manifest to ask it with`;
      continue;
    }
    if (!r.batch_id) {
      line.status = "submitting";
      continue;
    }
    try {
      const client = await pool.batchesFor(step);
      let v = await client.retrieve(r.batch_id, controller.signal);
      if (opts.cancel && !["completed", "failed", "expired", "cancelled", "cancelling"].includes(v.status)) {
        v = await client.cancel(r.batch_id, controller.signal);
        line.cancelled = true;
      }
      line.status = v.status;
      line.request_counts = v.counts;
    } catch (err) {
      line.error = pool.redact((err as Error).message);
      // What a build says of it too: the key may not be the one that made it.
      if ((err as { status?: number }).status === 404)
        line.error += ` (unknown under this key: build with the key that submitted it, or \`synthbuild status --forget ${r.batch_id}\` to submit its requests again)`;
    }
  }
  // A batch that can no longer be collected (its step gone, its files lost) stops blocking builds.
  if (opts.forget)
    for (const [i, r] of records.entries()) {
      if (Array.isArray(opts.forget) && !opts.forget.some((id) => named(r, id))) continue;
      await removeBatchRecord(paths.cacheDir, r.input_file_id);
      out[i]!.forgotten = true;
    }
  return { batches: out };
}
