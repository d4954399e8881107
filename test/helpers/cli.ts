import { spawn, spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
export const BIN = fileURLToPath(new URL("../../bin/synthbuild.js", import.meta.url));

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** A clean environment for the CLI: no API key or base URL leaking in from the developer's shell. */
export function cliEnv(extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, NO_COLOR: "1", CI: "true" };
  delete env.OPENAI_API_KEY;
  delete env.OPENAI_BASE_URL;
  delete env.SYNTHBUILD_CACHE_DIR;
  // Nor AWS credentials, profiles or endpoints: remote-cache tests pass their own.
  for (const v of Object.keys(env)) if (v.startsWith("AWS_")) delete env[v];
  // A proxy set on the machine running the tests must not decide where test requests go.
  for (const v of ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]) {
    delete env[v];
    delete env[v.toLowerCase()];
  }
  // The stamps' machine key goes to the temp folder, not the home of whoever runs the tests.
  env.SYNTHBUILD_STATE_DIR = join(tmpdir(), "synthbuild-test-state");
  return { ...env, ...extra };
}

/** Run the real binary synchronously (fine when no in-process server must answer it). */
export function runCliSync(args: string[], cwd: string, env: Record<string, string | undefined> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd, env: cliEnv(env), encoding: "utf8" });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * Run the real binary asynchronously: needed whenever the test process itself serves the
 * model endpoint (a sync spawn would block the server's event loop).
 */
export function runCli(args: string[], cwd: string, env: Record<string, string | undefined> = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd, env: cliEnv(env) });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (status) => resolve({ status, stdout, stderr }));
  });
}
