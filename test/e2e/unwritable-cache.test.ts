import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { mount } from "../helpers/mount.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/**
 * A cache that cannot be written (issue 10): found before the first request is paid for, and a
 * disk that fills mid-build stops the build at once, naming the answer lost.
 */

const manifest = (n: number) => `version: 1
name: disk
model: { name: m, base_url: "\${TEST_BASE_URL}", concurrency: 2 }
dimensions:
  v: [${Array.from({ length: n }, (_, i) => `v${i}`).join(", ")}]
steps:
  - id: s
    generate: { prompt: "{{ v }}" }
output: { path: dist/x.jsonl, prompt: "{{ v }}", completion: "{{ s }}" }
`;

describe("a cache that cannot be written", () => {
  let server: TestServer;
  let base: string;
  let cannot: string | undefined;
  before(async () => {
    server = await startTestServer({ answerWords: 400 });
    base = await mkdtemp(join(tmpdir(), "synthbuild-disk-"));
    await mkdir(join(base, "probe"));
    cannot = mount(["-t", "tmpfs", "-o", "size=64k", "tmpfs", join(base, "probe")]);
    if (!cannot) execFileSync("umount", [join(base, "probe")]);
    if (cannot) console.log(`# skipped: this machine cannot mount a tmpfs (${cannot})`);
  });
  after(async () => {
    await server.close();
    await rm(base, { recursive: true, force: true });
  });
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "sk-disk" });

  test("a read-only cache: exit 2 before any request, nothing written", async (t) => {
    if (cannot) return t.skip(`cannot mount: ${cannot}`);
    const p = await TempProject.create({ "dataset.yaml": manifest(3) });
    const ro = join(base, "ro");
    await mkdir(ro);
    try {
      assert.equal(mount(["--bind", ro, ro]), undefined);
      assert.equal(mount(["-o", "remount,bind,ro", ro]), undefined);
      server.reset();
      const r = await runCli(["build", "--cache-dir", ro], p.dir, env());
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /the cache folder .* is not writable \(EROFS\)/);
      assert.equal(server.requests.length, 0, "no answer is paid for that could not be kept");
      assert.equal(await p.exists("dataset.lock"), false);
    } finally {
      execFileSync("umount", [ro]);
      await p.remove();
    }
  });

  test("a cache folder that cannot exist (--cache-dir /proc/nope): exit 2 at once, no request", async () => {
    const p = await TempProject.create({ "dataset.yaml": manifest(3) });
    try {
      server.reset();
      const r = await runCli(["build", "--cache-dir", "/proc/nope"], p.dir, env());
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /not writable/);
      assert.equal(server.requests.length, 0);
    } finally {
      await p.remove();
    }
  });

  test("a disk that fills mid-build: the build stops at the first ENOSPC, names the lost answer, keeps the rest", async (t) => {
    if (cannot) return t.skip(`cannot mount: ${cannot}`);
    const p = await TempProject.create({ "dataset.yaml": manifest(40) });
    const full = join(base, "full");
    await mkdir(full);
    try {
      assert.equal(mount(["-t", "tmpfs", "-o", "size=48k", "tmpfs", full]), undefined);
      server.reset();
      const r = await runCli(["build", "--cache-dir", full], p.dir, env());
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, /cannot write to the cache .* \(ENOSPC/);
      assert.match(r.stderr, /the answer for sample [0-9a-f]{16} \(step 's'\) was lost/);
      assert.ok(server.requests.length < 40, `${server.requests.length} requests: the build went on paying after the disk filled`);
      assert.equal(await p.exists("dataset.lock"), false, "a build stopped early writes no lock");
      assert.doesNotMatch(r.stderr, /internal error/);
    } finally {
      execFileSync("umount", [full]);
      await p.remove();
    }
  });
});
