import type cliProgress from "cli-progress";
import type { BuildEvents } from "../events.js";

export interface Progress extends BuildEvents {
  stop(): void;
}

/**
 * Build progress on stderr: a live bar on a terminal, a plain line every few seconds otherwise
 * (CI logs), nothing with --quiet. Counts requests, not samples: requests are what take time and money.
 */
export function createProgress(opts: { bars?: typeof cliProgress; quiet: boolean; write: (line: string) => void; intervalMs?: number }): Progress {
  const state = { total: 0, done: 0, inTok: 0, outTok: 0, cost: 0 as number | null, retries: 0, failed: 0, started: 0 };
  // Elapsed 0 on the first frame: 0/0 would print NaN.
  const rate = () => {
    const elapsed = state.started ? (Date.now() - state.started) / 1000 : 0;
    return elapsed > 0 ? state.done / elapsed : 0;
  };
  /** The last retry, while no answer has come since: a build that is only retrying says why. */
  let waiting: { reason: string; at: number } | undefined;
  const retrying = () => {
    if (!waiting) return "";
    const s = Math.max(0, Math.ceil((waiting.at - Date.now()) / 1000));
    return `  retrying: ${waiting.reason.length > 80 ? `${waiting.reason.slice(0, 79)}…` : waiting.reason}, next attempt in ${s}s`;
  };
  const eta = () => {
    const r = rate();
    return r > 0 ? fmtDuration((state.total - state.done) / r) : "?";
  };
  const cost = () => (state.cost === null ? "cost ?" : `$${state.cost.toFixed(state.cost < 1 ? 4 : 2)}`);
  const summary = () =>
    `${state.done}/${state.total} requests  ${rate().toFixed(1)} req/s  tokens ${state.inTok} in / ${state.outTok} out  ${cost()}  ETA ${eta()}` +
    (state.retries ? `  retries ${state.retries}` : "") +
    (state.failed ? `  failed ${state.failed}` : "") +
    retrying();

  let bar: cliProgress.SingleBar | undefined;
  let timer: NodeJS.Timeout | undefined;
  const warnings: string[] = [];

  const ensureStarted = () => {
    if (state.started || opts.quiet) return;
    state.started = Date.now();
    if (opts.bars) {
      bar = new opts.bars.SingleBar(
        {
          format: "{bar} {value}/{total} requests | {rate} req/s | tokens {inTok}/{outTok} | {cost} | ETA {remaining}{extra}",
          hideCursor: true,
          clearOnComplete: false,
          stream: process.stderr,
          etaBuffer: 50,
        },
        opts.bars.Presets.shades_classic,
      );
      bar.start(state.total, 0, payload());
    } else {
      timer = setInterval(() => opts.write(summary()), opts.intervalMs ?? 5000);
      timer.unref();
    }
  };
  const payload = () => ({
    rate: rate().toFixed(1),
    inTok: state.inTok,
    outTok: state.outTok,
    cost: cost(),
    remaining: eta(),
    extra: (state.retries ? ` | retries ${state.retries}` : "") + (state.failed ? ` | failed ${state.failed}` : "") + retrying().replace(/^ {2}/, " | "),
  });
  const update = () => {
    if (bar) {
      bar.setTotal(state.total);
      bar.update(state.done, payload());
    }
  };

  return {
    warn(message) {
      if (bar) warnings.push(message);
      else opts.write(`warning: ${message}`);
    },
    planned(n) {
      state.total += n;
      if (!state.started && !opts.quiet) opts.write(`${n} request${n === 1 ? "" : "s"} to make`);
      ensureStarted();
      update();
    },
    unplanned(n) {
      state.total = Math.max(state.done, state.total - n);
      update();
    },
    answered(info) {
      waiting = undefined;
      state.done++;
      state.inTok += info.inputTokens;
      state.outTok += info.outputTokens;
      state.cost = state.cost === null || info.costUsd === null ? null : state.cost + info.costUsd;
      update();
    },
    retried(info) {
      state.retries++;
      waiting = { reason: info.reason, at: Date.now() + info.delayMs };
      update();
    },
    failed(info) {
      state.failed++;
      state.done++;
      state.inTok += info.inputTokens ?? 0;
      state.outTok += info.outputTokens ?? 0;
      if (info.costUsd !== undefined) state.cost = state.cost === null || info.costUsd === null ? null : state.cost + info.costUsd;
      if (bar) warnings.push(`sample ${info.sample} failed at ${info.step}: ${info.reason}`);
      else if (!opts.quiet) opts.write(`sample ${info.sample} failed at ${info.step}: ${info.reason}`);
      update();
    },
    stop() {
      if (bar) {
        bar.stop();
        bar = undefined;
      }
      if (timer) {
        clearInterval(timer);
        if (state.total && !opts.quiet) opts.write(summary());
      }
      for (const w of warnings) opts.write(`warning: ${w}`);
    },
  };
}

function fmtDuration(s: number): string {
  if (!Number.isFinite(s)) return "?";
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
