import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** s3rver's one account; any other access key id is refused with InvalidAccessKeyId. */
export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" };
export const BUCKET = "team-cache";

const MAIN = fileURLToPath(new URL("./s3-server.mjs", import.meta.url));

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

/**
 * A real S3-protocol server on loopback (s3rver, from npm) in a child process, storing in a temp
 * folder, with one bucket. `stop()` takes it down as a crash would for its clients (connections
 * cut; the folder stays, so `start()` on the same folder brings the same objects back);
 * `remove()` deletes the folder too.
 */
export class TestS3 {
  private child?: ChildProcess;
  endpoint = "";

  private constructor(readonly dir: string) {}

  static async start(): Promise<TestS3> {
    const s = new TestS3(await mkdtemp(join(tmpdir(), "synthbuild-s3-")));
    await s.start();
    return s;
  }

  async start(port = 0): Promise<void> {
    const child = spawn(process.execPath, ["--openssl-legacy-provider", MAIN, this.dir, String(port), BUCKET], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    this.child = child;
    const line = await new Promise<string>((resolve, reject) => {
      let buf = "";
      child.stdout!.on("data", (d) => {
        buf += d;
        if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
      });
      child.on("exit", (code, signal) => reject(new Error(`s3rver exited (${signal ?? code}) before listening`)));
    });
    this.endpoint = `http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`;
    // A test that fails before its remove() must not keep its file's process alive for ever:
    // the server never holds the test process open, and goes with it.
    child.unref();
    (child.stdout as unknown as { unref?: () => void }).unref?.();
    live.add(child);
    child.once("exit", () => live.delete(child));
  }

  get port(): number {
    return Number(new URL(this.endpoint).port);
  }

  /** Down at once, as a crashed server: in-flight connections are cut, not waited for. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once("exit", r));
    // The child is unref'd: something must hold the test process open until it has gone.
    const hold = setInterval(() => {}, 1000);
    child.kill("SIGTERM");
    await exited.finally(() => clearInterval(hold));
  }

  async remove(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
