/**
 * The thread a user's run module lives in (started by module-thread.ts). Its console output goes
 * to the parent's stderr, a call that never returns is ended from outside by terminating the
 * thread, and process.exit() is an error of the call, so that no run module can end a build,
 * write to stdout or hold the main thread.
 *
 * Messages are handled one at a time, in order: the parent knows which call is running (the
 * oldest it has not heard back about), so a timeout or a crash is blamed on the right sample.
 */
import { parentPort } from "node:worker_threads";
import type { FromModuleWorker, ModuleCall, ToModuleWorker } from "./module-thread.js";

class ExitCalled extends Error {
  constructor(readonly code: string) {
    // The message is what the parent sees if this is thrown outside a call (from a timer): uncaught.
    super(`called process.exit(${code})`);
  }
}

const exitThread = process.exit.bind(process);

// In a worker thread, process.exit() would end only the thread, and every call queued behind
// the one that made it with it; as an error it fails one sample and the thread goes on.
process.exit = ((code?: number | string | null) => {
  throw new ExitCalled(String(code ?? process.exitCode ?? 0));
}) as typeof process.exit;

const modules = new Map<string, Promise<unknown>>();
function defaultExport(url: string): Promise<unknown> {
  let p = modules.get(url);
  if (!p) modules.set(url, (p = import(url).then((m: { default?: unknown }) => m.default)));
  return p;
}

const port = parentPort!;

// An error thrown outside any call (from a timer the module set): the thread cannot go on. Said
// to the parent as a message, then the thread ends itself: left to Node's own uncaught-exception
// path, a worker thread being torn down at that moment can abort the whole process (Node 20).
process.on("uncaughtException", (err) => {
  const message = err instanceof ExitCalled ? err.message : err instanceof Error ? err.message : String(err);
  port.postMessage({ id: -1, crashed: message } satisfies FromModuleWorker);
  exitThread(1);
});
let queue = Promise.resolve();
port.on("message", (msg: ToModuleWorker) => {
  if (msg.kind === "load") queue = queue.then(() => load(msg));
  else for (const call of msg.calls) queue = queue.then(() => handle(call));
});

async function load(msg: ToModuleWorker & { kind: "load" }): Promise<void> {
  try {
    port.postMessage({ id: msg.id, defaultType: typeof (await defaultExport(msg.url)) });
  } catch (err) {
    port.postMessage({ id: msg.id, ...failure(err, "load") });
  }
}

async function handle(msg: ModuleCall): Promise<void> {
  let fn: unknown;
  try {
    fn = await defaultExport(msg.url);
  } catch (err) {
    port.postMessage({ id: msg.id, ...failure(err, "load") });
    return;
  }
  if (typeof fn !== "function") {
    port.postMessage({ id: msg.id, loadError: "it has no default export function" });
    return;
  }
  try {
    const result: unknown = await fn(Object.freeze(msg.vars));
    if (typeof result === "string") port.postMessage({ id: msg.id, text: result });
    else if (typeof (result as { drop?: unknown } | null)?.drop === "string") port.postMessage({ id: msg.id, drop: (result as { drop: string }).drop });
    else port.postMessage({ id: msg.id, invalid: describe(result) });
  } catch (err) {
    port.postMessage({ id: msg.id, ...failure(err, "call") });
  }
}

function failure(err: unknown, during: "load" | "call"): { exited: string } | { loadError: string } | { threw: string } {
  if (err instanceof ExitCalled) return { exited: err.code };
  const message = err instanceof Error ? err.message : String(err);
  return during === "load" ? { loadError: message } : { threw: message };
}

function describe(value: unknown): string {
  try {
    return String(JSON.stringify(value)).slice(0, 60);
  } catch {
    return String(value).slice(0, 60);
  }
}
