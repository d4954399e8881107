import { randomBytes } from "node:crypto";
import { link, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { makeDirs } from "../../util/make-dirs.js";
import { Pack } from "../pack.js";
import { parseEntry } from "../store.js";
import { KEY_FILE, objectPath, type Remote, RemoteAccessError, RemoteUnavailableError } from "./types.js";

/**
 * A folder as a remote: a shared drive, NFS or SMB mount, or `file://` URL. Entries are written
 * one file each (`<root>/objects/ab/abcdef….json`: a hard link is the atomic claim that works on
 * network filesystems, where appends from two machines are not), and read from there or from the
 * folder's packs, so any local cache folder can serve as a remote too.
 */
export class DirectoryRemote implements Remote {
  constructor(readonly root: string) {}

  private packed?: Pack;

  /** The folder's packs (a local cache's answers), read fresh each time: their writers may be running. */
  private packedCopy(key: string): Buffer | undefined {
    this.packed ??= new Pack(this.root, (k, record) => parseEntry(record.toString("utf8"), k) !== undefined);
    for (const record of this.packed.candidates(key, true)) if (parseEntry(record.toString("utf8"), key)) return record;
    return undefined;
  }

  get description(): string {
    return this.root;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(join(this.root, objectPath(key)));
    } catch (err) {
      if (code(err) !== "ENOENT") throw this.fail(err, "read");
    }
    try {
      return this.packedCopy(key);
    } catch (err) {
      throw this.fail(err, "read");
    }
  }

  /**
   * Written whole to a temp file, then hard-linked into place: link() fails with EEXIST when the
   * key exists, so two writers can never both win and no reader ever sees a torn file. On a
   * filesystem without hard links, an exclusive create takes its place (readers validate what
   * they read, so a reader racing the writer sees a corrupt entry at worst, never a wrong one).
   */
  async putIfAbsent(key: string, bytes: Uint8Array): Promise<"stored" | "exists"> {
    if (this.packedCopy(key)) return "exists";
    const path = join(this.root, objectPath(key));
    const tmp = `${path}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`;
    try {
      await makeDirs(dirname(path));
      await writeFile(tmp, bytes);
      try {
        await link(tmp, path);
        return "stored";
      } catch (err) {
        if (code(err) === "EEXIST") return "exists";
        if (!["EPERM", "ENOTSUP", "EOPNOTSUPP", "ENOSYS", "EXDEV"].includes(code(err) ?? "")) throw err;
      }
      return await this.createExclusive(path, bytes);
    } catch (err) {
      throw this.fail(err, "write");
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private async createExclusive(path: string, bytes: Uint8Array): Promise<"stored" | "exists"> {
    let fh: import("node:fs/promises").FileHandle;
    try {
      fh = await open(path, "wx");
    } catch (err) {
      if (code(err) === "EEXIST") return "exists";
      throw err;
    }
    try {
      await fh.writeFile(bytes);
    } finally {
      await fh.close();
    }
    return "stored";
  }

  async has(key: string): Promise<boolean> {
    try {
      await stat(join(this.root, objectPath(key)));
      return true;
    } catch (err) {
      if (code(err) !== "ENOENT") throw this.fail(err, "read");
    }
    return this.packedCopy(key) !== undefined;
  }

  async list(): Promise<Set<string>> {
    const keys = new Set<string>();
    const objects = join(this.root, "objects");
    let shards: string[];
    try {
      shards = await readdir(objects);
    } catch (err) {
      if (code(err) !== "ENOENT") throw this.fail(err, "list");
      shards = [];
    }
    for (const shard of shards) {
      let files: string[];
      try {
        files = await readdir(join(objects, shard));
      } catch (err) {
        if (code(err) === "ENOTDIR" || code(err) === "ENOENT") continue;
        throw this.fail(err, "list");
      }
      for (const f of files) if (KEY_FILE.test(f) && f.startsWith(shard)) keys.add(f.slice(0, -5));
    }
    this.packed ??= new Pack(this.root, (k, record) => parseEntry(record.toString("utf8"), k) !== undefined);
    for (const k of this.packed.keys()) keys.add(k);
    return keys;
  }

  private fail(err: unknown, what: string): Error {
    const c = code(err);
    if (c === "EACCES" || c === "EPERM" || c === "EROFS")
      return new RemoteAccessError(`cannot ${what} the remote cache folder ${this.root}: ${c}`, "check that this user may read and write that folder");
    if (c && ["EIO", "ESTALE", "ENOTCONN", "EHOSTDOWN", "EHOSTUNREACH", "ETIMEDOUT", "EAGAIN", "EBUSY"].includes(c))
      return new RemoteUnavailableError(`the remote cache folder ${this.root} is not reachable (${c})`, "is the shared drive mounted?");
    if (c === "ENOSPC" || c === "EDQUOT") return new RemoteUnavailableError(`the remote cache folder ${this.root} is full (${c})`);
    return err instanceof Error ? err : new Error(String(err));
  }
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException)?.code;
}
