import { mkdtemp, rm } from "node:fs/promises";
import type { Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import S3rver from "s3rver";

/** s3rver's one account; any other access key id is refused with InvalidAccessKeyId. */
export const S3_CREDENTIALS = { AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1" };
export const BUCKET = "team-cache";

/**
 * A real S3-protocol server on loopback (s3rver, from npm), storing in a temp folder, with one
 * bucket. `stop()` takes it down (the folder stays, so `start()` on the same folder brings the
 * same objects back); `remove()` deletes the folder too.
 */
export class TestS3 {
  private server?: S3rver;
  endpoint = "";

  private constructor(readonly dir: string) {}

  static async start(): Promise<TestS3> {
    const s = new TestS3(await mkdtemp(join(tmpdir(), "synthbuild-s3-")));
    await s.start();
    return s;
  }

  async start(port = 0): Promise<void> {
    this.server = new S3rver({ port, address: "127.0.0.1", silent: true, directory: this.dir, configureBuckets: [{ name: BUCKET, configs: [] }] });
    const addr = await this.server.run();
    this.endpoint = `http://127.0.0.1:${addr.port}`;
  }

  get port(): number {
    return Number(new URL(this.endpoint).port);
  }

  /** Down at once, as a crashed server: in-flight connections are cut, not waited for. */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    const closed = server.close();
    (server as unknown as { httpServer?: Server }).httpServer?.closeAllConnections();
    await closed;
  }

  async remove(): Promise<void> {
    await this.stop();
    await rm(this.dir, { recursive: true, force: true });
  }
}
