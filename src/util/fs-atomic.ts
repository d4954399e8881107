import { randomBytes } from "node:crypto";
import { open, rename, rm } from "node:fs/promises";
import { dirname } from "node:path";
import { makeDirs } from "./make-dirs.js";

/**
 * Write a file so that readers see either the old content or the new, never a torn one: write a
 * temp file beside it, fsync, rename over. A crash leaves at worst a stray `.tmp-*` file.
 */
export async function writeFileAtomic(path: string, data: string | Uint8Array, opts: { fsync?: boolean } = {}): Promise<void> {
  await makeDirs(dirname(path));
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
  const fh = await open(tmp, "w");
  try {
    await fh.writeFile(data);
    if (opts.fsync !== false) await fh.sync();
  } catch (err) {
    await fh.close();
    await rm(tmp, { force: true });
    throw err;
  }
  await fh.close();
  await rename(tmp, path);
}

/** The streaming form of writeFileAtomic: chunks go to a temp file that replaces `path` on commit. */
export class AtomicFileWriter {
  private constructor(
    private readonly path: string,
    private readonly tmp: string,
    private readonly fh: import("node:fs/promises").FileHandle,
    private readonly fsync: boolean,
  ) {}

  static async open(path: string, opts: { fsync?: boolean } = {}): Promise<AtomicFileWriter> {
    await makeDirs(dirname(path));
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    return new AtomicFileWriter(path, tmp, await open(tmp, "w"), opts.fsync !== false);
  }

  async write(chunk: string | Uint8Array): Promise<void> {
    const bytes = typeof chunk === "string" ? Buffer.from(chunk, "utf8") : chunk;
    // A write may take part of the bytes (a full disk at its edge, a signal): the rest follows.
    for (let at = 0; at < bytes.byteLength; ) {
      const { bytesWritten } = await this.fh.write(bytes, at);
      if (bytesWritten === 0) throw new Error(`${this.tmp}: nothing written`);
      at += bytesWritten;
    }
  }

  async commit(): Promise<void> {
    if (this.fsync) await this.fh.sync();
    await this.fh.close();
    await rename(this.tmp, this.path);
  }

  async abort(): Promise<void> {
    await this.fh.close().catch(() => {});
    await rm(this.tmp, { force: true });
  }
}
