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

/** Threads that have sent "online" (a thread taken from the spares may have, before anyone listened). */
const online = new WeakSet<Worker>();

/**
 * A thread for run modules. Its stdout and stderr are the parent's stderr: a module's console.log
 * must never reach stdout, where `--json` prints its one object.
 */
function startModuleWorker(): Worker {
  const worker = new Worker(WORKER, { stdout: true, stderr: true });
  worker.stdout.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  worker.stderr.on("data", (chunk: Buffer) => process.stderr.write(chunk));
  worker.once("online", () => online.add(worker));
  // A spare that dies (out of memory, a module's stray timer) is no spare.
  worker.once("exit", () => {
    clearTimeout(spares.get(worker));
    spares.delete(worker);
  });
  return worker;
}

/**
 * Threads started ahead (`prestartModuleWorker`) or done with checking a module, for the next
 * that needs one. A thread's start-up costs about 100 ms of wall and CPU time here, and a build
 * with a run step used to start three (the check's, then the run pool's); with these it starts
 * one or two, and the check's thread (the module already imported) runs the first calls. A spare
 * never holds the process open, and is ended when nobody took it within SPARE_MS.
 */
const spares = new Map<Worker, NodeJS.Timeout>();
const SPARE_MS = 3000;

function keep(worker: Worker): void {
  worker.unref();
  const timer = setTimeout(() => {
    spares.delete(worker);
    void worker.terminate();
  }, SPARE_MS);
  timer.unref();
  spares.set(worker, timer);
}

/** Start a thread now, for the first `takeModuleWorker`: its start-up overlaps the caller's work (reading the manifest). */
export function prestartModuleWorker(): void {
  if (!spares.size) keep(startModuleWorker());
}

/** A thread for run modules: a spare if there is one, else a new one. */
export function takeModuleWorker(): Worker {
  for (const [worker, timer] of spares) {
    clearTimeout(timer);
    spares.delete(worker);
    worker.ref();
    return worker;
  }
  return startModuleWorker();
}

/** A thread done with what it was taken for, sound, with nothing running: kept for the next taker. */
export function returnModuleWorker(worker: Worker): void {
  keep(worker);
}

/** Whether the thread runs already: its "online" event will not come again. */
export function isOnline(worker: Worker): boolean {
  return online.has(worker);
}
