import { type Remote, RemoteAccessError, RemoteObjectError } from "../cache/remote/types.js";
import { type Cache, parseEntry } from "../cache/store.js";
import { pull, readThrough, soundEntry, type Validate } from "../cache/sync.js";
import { WriteBack } from "../cache/write-back.js";
import { FrozenError } from "../errors.js";
import type { BuildEvents } from "../events.js";
import type { RemoteHooks } from "../execute/resolver.js";
import type { Lock } from "../lock/lockfile.js";
import { hash64 } from "../util/hash.js";

/** What a build did with its remote cache, for the summary and `--json`. */
export interface RemoteReport {
  remote: string;
  /** Answers fetched from the remote instead of requested. */
  fetched: number;
  uploaded: number;
  /** Answers this build stored that the remote did not get, and why (the build still succeeded). */
  notUploaded: { key: string; reason: string }[];
}

/**
 * A build's use of the remote cache: read-through on a local miss (before any request), and
 * write-back of each new answer in the background (never slowing requests; a remote that goes
 * down costs uploads, not the build). Wrong credentials are found before the first request.
 */
export class BuildRemote {
  private fetched = 0;
  private readonly writeBack?: WriteBack;
  private unavailable?: string;

  private constructor(
    private readonly cache: Cache,
    private readonly remote: Remote,
    upload: boolean,
    private readonly events: BuildEvents,
  ) {
    if (upload) this.writeBack = new WriteBack(cache, remote);
  }

  /** Check access first: a refusal is the user's to fix (exit 2); an unreachable remote only a warning. */
  static async open(cache: Cache, remote: Remote, opts: { upload: boolean; events: BuildEvents }): Promise<BuildRemote> {
    const r = new BuildRemote(cache, remote, opts.upload, opts.events);
    try {
      await remote.has("0".repeat(32));
    } catch (err) {
      if (err instanceof RemoteAccessError) throw err;
      r.unavailable = (err as Error).message;
      opts.events.warn?.(`the remote cache ${remote.description} cannot be reached (${r.unavailable}); building from the local cache alone`);
    }
    return r;
  }

  hooks(): RemoteHooks {
    return {
      fetch: async (key) => {
        if (this.unavailable) return false;
        const r = await readThrough(this.cache, this.remote, key);
        if (r.found) this.fetched++;
        else if (r.why === "corrupt") this.events.warn?.(`the remote's copy of answer ${key} is corrupt: requested anew`);
        return r.found;
      },
      stored: (key) => this.writeBack?.add(key),
    };
  }

  /** Wait for the uploads (bounded by the uploader's own retries) and say what happened. */
  async finish(): Promise<RemoteReport> {
    const wb = this.writeBack ? await this.writeBack.flush() : { uploaded: [], present: [], notUploaded: [], bytes: 0 };
    if (wb.notUploaded.length)
      this.events.warn?.(
        `${wb.notUploaded.length} answer${wb.notUploaded.length === 1 ? " was" : "s were"} not uploaded to ${this.remote.description} (${wb.notUploaded[0]!.reason}); \`synthbuild push\` uploads ${wb.notUploaded.length === 1 ? "it" : "them"} later`,
      );
    return { remote: this.remote.description, fetched: this.fetched, uploaded: wb.uploaded.length + wb.present.length, notUploaded: wb.notUploaded };
  }
}

/**
 * --frozen with a remote: fetch every answer the lock names that the local cache lacks, each
 * checked against the lock's own record of it (whole, and the very answer the lock names), before
 * anything is decided. A missing or corrupt object is an error naming its sample, never a request.
 */
export async function pullForFrozen(cache: Cache, remote: Remote, lock: Lock): Promise<number> {
  const outOf = new Map<string, { sample: string; out?: string }>();
  for (const s of lock.samples) for (const st of Object.values(s.steps)) if (st.key) outOf.set(st.key, { sample: s.id, out: st.out });
  const validate: Validate = (key, bytes) => {
    if (!soundEntry(key, bytes)) return false;
    const want = outOf.get(key)?.out;
    return want === undefined || hash64(parseEntry(Buffer.from(bytes).toString("utf8"), key)!.response.text) === want;
  };
  try {
    return (await pull(cache, remote, outOf.keys(), { validate, concurrency: 16 })).transferred;
  } catch (err) {
    if (!(err instanceof RemoteObjectError)) throw err;
    const named = err.problems.map((p) => `  sample ${outOf.get(p.key)?.sample ?? "?"}: answer ${p.key} is ${p.problem} on the remote`);
    throw new FrozenError(
      `--frozen: ${err.problems.length} answer${err.problems.length === 1 ? "" : "s"} the lock names could not be fetched from ${remote.description}:\n${named.slice(0, 20).join("\n")}${named.length > 20 ? `\n  … and ${named.length - 20} more` : ""}`,
      err.problems.map((p) => outOf.get(p.key)?.sample ?? p.key),
      err.problems.some((p) => p.problem !== "unavailable")
        ? "whoever built these answers can `synthbuild push` them; nothing corrupt was stored locally"
        : "the remote was unreachable: try again",
    );
  }
}
