import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";

/** One call of a module's default export, with a sample's variables. */
export interface ModuleCall {
  id: number;
  url: string;
  vars: Readonly<Record<string, unknown>>;
}

/** What the parent asks a module worker (module-worker.ts): load a module, or make calls, in order. */
export type ToModuleWorker = { kind: "load"; id: number; url: string } | { kind: "calls"; calls: ModuleCall[] };

/** What it answers, for the message with the same id. */
export type FromModuleWorker = { id: number } & (
  | { defaultType: string }
  | { text: string }
  | { drop: string }
  | { invalid: string }
  | { threw: string }
  | { loadError: string }
  | { exited: string }
  /** Not an answer: the thread failed outside any call (id -1) and is ending. */
  | { crashed: string }
);

// Beside this file in both layouts: lib/manifest/ (tsc) and lib/bundle/ (scripts/bundle-cli.js makes
// it an entry point). Not under tsx, whose loader Node 20 does not give a worker's entry point:
// tests of the pool import lib/.
const WORKER = fileURLToPath(new URL("./module-worker.js", import.meta.url));

/**
 * A thread for run modules. Its stdout and stderr are the parent's stderr: a module's console.log
 * must never reach stdout, where `--json` prints its one object.
 */
export function startModuleWorker(): Worker {
  const worker = new Worker(WORKER, { stdout: true, stderr: true });
  worker.stdout.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  worker.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  return worker;
}
