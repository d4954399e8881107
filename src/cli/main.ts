import { Command, CommanderError, InvalidArgumentError } from "commander";
import {
  type BuildEvents,
  type BuildResult,
  build,
  diff,
  drift,
  EndpointError,
  FrozenError,
  gc,
  init,
  lock,
  ManifestError,
  ManifestSyntaxError,
  migrate,
  type PlanResult,
  plan,
  probe,
  pull,
  push,
  RemoteObjectError,
  redactor,
  report,
  reroll,
  type Shard,
  type ShowResult,
  SynthbuildError,
  secretsIn,
  show,
  status,
  UsageError,
  VERSION,
  VerifyError,
  verify,
} from "../index.js";
import { formatBuild, formatDiff, formatDrift, formatPlan, formatProbe, formatShow, formatStatus, formatTransfer, transferJson } from "./format.js";
import { createProgress } from "./progress.js";

/**
 * The command line: a flag table per command and one library call each. This is the only place
 * that decides exit codes (0 built, 1 failures or frozen/verify mismatch, 2 bad manifest or usage,
 * 130 interrupted, 70 a bug); what builds says its progress on stderr, a viewer (show, diff, status,
 * probe) its report on stdout, and with --json stdout holds one JSON object alone, even on failure.
 */
export async function main(argv: string[]): Promise<number> {
  // Everything printed passes the one redaction: an endpoint may echo a key into any message.
  const redact = redactor(secretsIn(process.env));
  const err = (line: string) => process.stderr.write(redact(line) + "\n");
  const out = (value: unknown) => process.stdout.write(redact(JSON.stringify(value, null, 2)) + "\n");
  let code = 0;

  const program = new Command("synthbuild")
    .description("make for synthetic fine-tuning datasets: declare dataset.yaml, build dist/, rebuild only what changed")
    .version(VERSION)
    .option("-f, --file <path>", "the manifest", "dataset.yaml")
    .option("--cache-dir <dir>", "cache folder (default: cache/ beside the manifest, or $SYNTHBUILD_CACHE_DIR)")
    .option(
      "--remote <url>",
      "remote cache (s3://bucket/prefix, file:///path or a folder) for build, lock, push and pull, overriding the manifest's cache.remote",
    )
    .option("-q, --quiet", "no progress output")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeErr: (s) => process.stderr.write(redact(s)) })
    .exitOverride();

  const common = () => {
    const g = program.opts<{ file: string; cacheDir?: string; quiet?: boolean; remote?: string }>();
    return { file: g.file, cacheDir: g.cacheDir, quiet: g.quiet ?? false, remote: g.remote };
  };

  const reportBuild = (result: BuildResult, quiet: boolean) => {
    // A release of zero rows is said even with -q: it is almost never what was meant.
    const allDropped = result.samples > 0 && result.dropped === result.samples;
    // Fewer rows than target.rows is not the dataset asked for: said even with -q, and exit 1
    // (as failed samples are), unless samples are still to be built and may yet make it up.
    const short = result.target && !result.target.reached && result.pending === 0;
    if (!quiet || result.failed || allDropped || short) err(formatBuild(result));
    if (result.failed || result.pending - result.heldBack || short) code = 1;
  };

  program
    .command("init")
    .description("write a starter dataset.yaml (the plot-outline example) and data/places.txt")
    .option("--force", "overwrite existing files")
    .action(async (o: { force?: boolean }) => {
      const { written } = await init({ file: common().file, force: o.force });
      for (const w of written) err(`wrote ${w}`);
      err("next: synthbuild build --offline   (no key needed), or set OPENAI_API_KEY and run synthbuild build");
    });

  program
    .command("plan")
    .description("show what a build would do, with token and cost estimates; makes no request")
    .option("--json", "print one JSON object on stdout")
    .option("--explain", "say why each sample that needs requests needs them")
    .option("--offline", "plan for the offline echo provider")
    .option("--limit <n>", "what build --limit N would do: requests for the first N samples that need one", positiveInt)
    .action(async (o: { json?: boolean; explain?: boolean; offline?: boolean; limit?: number }) => {
      const c = common();
      const result: PlanResult = await plan({ ...c, explain: o.explain, offline: o.offline, limit: o.limit, events: { warn: (m) => err(`warning: ${m}`) } });
      if (o.json) out(result);
      else err(formatPlan(result));
    });

  program
    .command("build")
    .description("build dist/ and dataset.lock, requesting only answers the cache lacks")
    .option("--json", "print one JSON summary object on stdout")
    .option("--frozen", "make no request; exit 1 if the cache and lock cannot produce the dataset (the CI gate)")
    .option("--limit <n>", "a trial run: request answers for at most N samples, the first N that need one (the rest come from the cache or wait)", positiveInt)
    .option("--concurrency <n>", "requests in flight at once, overriding the manifest", positiveInt)
    .option("--max-cost <usd>", "stop starting requests before this many US dollars are spent", positiveNumber)
    .option("--offline", "use the built-in echo provider for every step: no key, no network")
    .option(
      "--shard <i/n>",
      "request only shard i of n of the missing answers (by sample id) into the cache and its remote; writes no dist/ or lock: a plain build afterwards assembles them",
      shardOf,
    )
    .option("--verbose", "say how the build decided what to do: why it is, or is not, already up to date")
    .action(
      async (o: {
        json?: boolean;
        frozen?: boolean;
        limit?: number;
        concurrency?: number;
        maxCost?: number;
        offline?: boolean;
        verbose?: boolean;
        shard?: Shard;
      }) => {
        const c = common();
        if (o.shard && o.frozen) throw new UsageError("--shard and --frozen do not go together", "--frozen makes no request; shards exist to make them");
        const result = await withProgress(c.quiet, o.verbose, (events, signal) =>
          build({ ...c, frozen: o.frozen, limit: o.limit, concurrency: o.concurrency, maxCost: o.maxCost, offline: o.offline, shard: o.shard, signal, events }),
        );
        if (o.json) out(buildJson(result));
        reportBuild(result, c.quiet);
      },
    );

  program
    .command("reroll")
    .description(
      "draw new answers for chosen samples: bumps their attempt in dataset.lock (a new nonce and cache key for that step; what reads it follows), then builds; other samples are untouched",
    )
    .argument("<ids...>", "sample ids, or unique prefixes of them")
    .option("--step <id>", "the generate step to draw again (default: the first generate step)")
    .option("--no-build", "only record the new attempts in dataset.lock; `synthbuild build` then draws them")
    .option("--json", "print one JSON object on stdout: rerolled, same_answer, build")
    .option("--concurrency <n>", "requests in flight at once, overriding the manifest", positiveInt)
    .option("--max-cost <usd>", "stop starting requests before this many US dollars are spent", positiveNumber)
    .option("--offline", "use the built-in echo provider for every step: no key, no network")
    .option("--verbose", "say how the build decided what to do")
    .action(
      async (
        ids: string[],
        o: { step?: string; build: boolean; json?: boolean; concurrency?: number; maxCost?: number; offline?: boolean; verbose?: boolean },
      ) => {
        const c = common();
        const r = await withProgress(c.quiet, o.verbose, (events, signal) =>
          reroll(ids, { ...c, step: o.step, build: o.build, concurrency: o.concurrency, maxCost: o.maxCost, offline: o.offline, signal, events }),
        );
        if (o.json) out({ rerolled: r.rerolled, same_answer: r.sameAnswer, build: r.build ? buildJson(r.build) : null });
        if (!c.quiet) for (const x of r.rerolled) err(`rerolled ${x.sample} step '${x.step}': attempt ${x.attempt}`);
        if (!r.build) err("recorded in dataset.lock: run `synthbuild build` to draw the new answers");
        else reportBuild(r.build, c.quiet);
        for (const id of r.sameAnswer)
          err(`warning: ${id}'s new answer is the same text as before: the endpoint answers this request deterministically (temperature 0? a seed param?)`);
      },
    );

  program
    .command("verify")
    .description("check that dist/ and the cache agree with dataset.lock, and the lock with the manifest")
    .option("--json", "print one JSON object on stdout")
    .option("--drift", "also ask each endpoint (one one-token request per model) which snapshot it serves now, and name the answers given by another")
    .action(async (o: { json?: boolean; drift?: boolean }) => {
      const drifted = o.drift ? await drift(common()) : undefined;
      if (drifted) err(formatDrift(drifted));
      const r = await verify(common());
      if (o.json) out({ ok: true, ...r, ...(drifted ? { drift: drifted } : {}) });
      err(`ok: ${r.samples} samples, ${r.outputs} outputs and ${r.cacheEntries} cached answers agree with the lock`);
    });

  program
    .command("lock")
    .description("write dataset.lock anew from the manifest and the cache (and the remote), with no request: after a git merge of two rebuilt branches")
    .option("--offline", "for a dataset built --offline (the default when the lock says so)")
    .option("--json", "print one JSON object on stdout")
    .action(async (o: { json?: boolean; offline?: boolean }) => {
      const r = await lock({ ...common(), offline: o.offline, events: { warn: (m) => err(`warning: ${m}`) } });
      if (o.json) out(r);
      err(
        `${r.written ? "wrote" : "kept"} dataset.lock: ${r.complete} of ${r.samples} samples complete` +
          (r.missing.length
            ? `; ${r.missing.length} lack an answer (\`synthbuild build\` requests them):\n${r.missing
                .slice(0, 20)
                .map((x) => `  ${x.sample} (step ${x.step})`)
                .join("\n")}`
            : ""),
      );
      if (r.missing.length) code = 1;
    });

  program
    .command("diff")
    .description("what changed between two releases: samples added, removed and changed, by cause; rows moved between splits; outputs")
    .argument("[from]", "a lock file or git revision (default HEAD's lock)")
    .argument("[to]", "a lock file or git revision (default the working lock)")
    .option("--json", "print one JSON object on stdout")
    .action(async (from: string | undefined, to: string | undefined, o: { json?: boolean }) => {
      const r = await diff({ ...common(), from, to });
      if (o.json) out(r);
      else process.stdout.write(`${formatDiff(r)}\n`);
    });

  program
    .command("migrate")
    .description("carry answers cached under an older cache key over to the current key, for this manifest's requests (no request is made)")
    .requiredOption("--from-key <version>", "the cache key version the answers were stored under (1: synthbuild 0.1)", positiveInt)
    .option("--offline", "the answers of an --offline build")
    .option("--json", "print one JSON object on stdout")
    .action(async (o: { fromKey: number; offline?: boolean; json?: boolean }) => {
      const r = await migrate({ ...common(), fromKey: o.fromKey, offline: o.offline });
      if (o.json) out(r);
      err(
        `migrated ${r.migrated} answer${r.migrated === 1 ? "" : "s"} to the current key; ${r.current} already current; ${r.missing} not in the cache under either key`,
      );
    });

  program
    .command("show")
    .description("show one sample through every step: values, requests, answers, and whether it was kept")
    .argument("<id>", "a sample id, or a unique prefix of one")
    .option("--json", "print one JSON object on stdout")
    .option("--offline", "show the requests as the offline echo provider gets them (the default when the lock was built --offline)")
    .action(async (id: string, o: { json?: boolean; offline?: boolean }) => {
      const r: ShowResult = await show(id, { ...common(), offline: o.offline });
      if (o.json) out(r);
      else process.stdout.write(redact(formatShow(r)) + "\n");
    });

  program
    .command("probe")
    .description(
      "measure a generate step's endpoint at rising concurrency (1, 2, 4, ...) and say which concurrency to set: the knee, where more in flight stops adding answers per second. Sends real requests (8 tokens each); nothing is cached",
    )
    .option("--step <id>", "the generate step whose endpoint and model to probe (default: the first)")
    .option("--seconds <n>", "seconds at each concurrency", positiveNumber, 5)
    .option("--max <n>", "the highest concurrency to try", positiveInt, 256)
    .option("--json", "print one JSON object on stdout")
    .action(async (o: { step?: string; seconds: number; max: number; json?: boolean }) => {
      const r = await probe({
        ...common(),
        step: o.step,
        seconds: o.seconds,
        max: o.max,
        events: { decided: o.json || common().quiet ? undefined : (msg) => err(msg) },
      });
      if (o.json) out(r);
      else process.stdout.write(`${formatProbe(r)}\n`);
    });

  program
    .command("status")
    .description("the Batch API batches this cache waits for: step, endpoint, status, requests answered, age; a build collects their answers")
    .option("--cancel", "cancel every batch still running (the next build collects what they answered and asks again for the rest)")
    .option(
      "--forget [ids...]",
      "drop the records of these batches (every batch, without ids), nothing cancelled: the next build asks again for their requests (paid twice if a batch still finishes)",
    )
    .option("--json", "print one JSON object on stdout")
    .action(async (o: { cancel?: boolean; forget?: boolean | string[]; json?: boolean }) => {
      const r = await status({ ...common(), cancel: o.cancel, forget: o.forget });
      if (o.json) out(r);
      else process.stdout.write(`${redact(formatStatus(r))}\n`);
    });

  program
    .command("report")
    .description(
      "write one self-contained HTML page about the dataset: coverage per dimension and per pair, lengths per step, drops, failures, models, tokens and cost, and the samples; no request is made",
    )
    .option("-o, --out <path>", "where to write the page", "report.html")
    .option("--rows <n>", "samples in the table at the end", positiveInt, 500)
    .option("--offline", "read the answers the offline echo provider gave (the default when the lock was built --offline)")
    .option("--json", "also print the page's data as one JSON object on stdout")
    .action(async (o: { out: string; rows: number; offline?: boolean; json?: boolean }) => {
      const r = await report({ ...common(), out: o.out, rows: o.rows, offline: o.offline });
      if (o.json) out({ path: r.path, ...r.data });
      else if (!common().quiet) err(`wrote ${r.path} (${r.data.counts.kept} kept of ${r.data.counts.samples} samples); open it in a browser`);
    });

  program
    .command("gc")
    .description(
      "remove cache entries nothing needs: keeps every answer named by dataset.lock, by the lock of every git branch and tag, by --keep locks, and by other projects sharing the cache; waits for running builds",
    )
    .option("--dry-run", "say what would be removed, remove nothing")
    .option("--keep <lock...>", "also keep every answer these lock files name")
    .option("--json", "print one JSON object on stdout")
    .action(async (o: { dryRun?: boolean; json?: boolean; keep?: string[] }) => {
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once("SIGINT", onSigint);
      try {
        const r = await gc({ ...common(), dryRun: o.dryRun, keep: o.keep, signal: controller.signal, events: { warn: (m) => err(`warning: ${m}`) } });
        if (o.json) out(r);
        err(
          `${r.dryRun ? "would remove" : "removed"} ${r.removed} cache entr${r.removed === 1 ? "y" : "ies"} (${(r.bytes / 1024).toFixed(1)} KiB); ${r.kept} kept` +
            ` (the working lock${r.sources.refs ? `, ${r.sources.refs} committed lock${r.sources.refs === 1 ? "" : "s"}` : ""}${r.sources.files ? `, ${r.sources.files} --keep` : ""}${r.sources.otherProjects ? `, ${r.sources.otherProjects} other project${r.sources.otherProjects === 1 ? "" : "s"}` : ""})`,
        );
      } finally {
        process.off("SIGINT", onSigint);
      }
    });

  program
    .command("push")
    .description("upload to the remote cache every answer dataset.lock references that it lacks (first writer wins)")
    .option("--json", "print one JSON object on stdout")
    .option("--concurrency <n>", "uploads in flight at once (default 16)", positiveInt)
    .action(async (o: { json?: boolean; concurrency?: number }) => {
      const r = await push({ ...common(), concurrency: o.concurrency });
      if (o.json) out(transferJson(r, { missing_locally: r.missingLocally }));
      err(`pushed ${formatTransfer(r)} to ${r.remote}; ${r.present} already there`);
      if (r.missingLocally.length) {
        err(
          `${r.missingLocally.length} answers the lock references are not in the local cache, so were not pushed: ${r.missingLocally.slice(0, 5).join(", ")}${r.missingLocally.length > 5 ? ", …" : ""}`,
        );
        code = 1;
      }
    });

  program
    .command("pull")
    .description("download from the remote cache every answer dataset.lock references that the local cache lacks, each checked before it is stored")
    .option("--json", "print one JSON object on stdout")
    .option("--concurrency <n>", "downloads in flight at once (default 16)", positiveInt)
    .action(async (o: { json?: boolean; concurrency?: number }) => {
      const r = await pull({ ...common(), concurrency: o.concurrency });
      if (o.json) out(transferJson(r, {}));
      err(`pulled ${formatTransfer(r)} from ${r.remote}; ${r.present} already here`);
    });

  try {
    await program.parseAsync(argv, { from: "user" });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      // Commander has said it on stderr; with --json, stdout still holds exactly one object.
      if (argv.includes("--json"))
        out({ error: { kind: "UsageError", message: e.message.replace(/^error: /, ""), hint: "run with --help for usage", exit_code: 2 } });
      return 2;
    }
    // chalk is loaded only to report an error: a successful run should not pay for it.
    const { default: chalk } = await import("chalk");
    if (e instanceof SynthbuildError) {
      err(`${chalk.red("error:")} ${e.message}`);
      if (e.hint) err(`  hint: ${e.hint}`);
      // With --json, stdout still holds exactly one object, whatever happened.
      if (argv.includes("--json")) out({ error: { kind: e.name, message: e.message, hint: e.hint ?? null, exit_code: e.exitCode, ...details(e) } });
      return e.exitCode;
    }
    err(`${chalk.red("internal error")} (a bug in synthbuild; please report it):`);
    err((e as Error)?.stack ?? String(e));
    if (argv.includes("--json"))
      out({ error: { kind: "InternalError", message: (e as Error)?.message ?? String(e), hint: "a bug in synthbuild: please report it", exit_code: 70 } });
    return 70;
  }
}

/**
 * A build's progress on stderr (a live bar on a terminal, loaded only then; periodic plain lines
 * in CI logs) and Ctrl-C as an abort: once keeps finished answers, twice quits.
 */
async function withProgress<T>(quiet: boolean, verbose: boolean | undefined, fn: (events: BuildEvents, signal: AbortSignal) => Promise<T>): Promise<T> {
  const err = (line: string) => process.stderr.write(redactor(secretsIn(process.env))(line) + "\n");
  const tty = Boolean(process.stderr.isTTY) && !process.env.CI;
  const bars = tty && !quiet ? (await import("cli-progress")).default : undefined;
  const progress = createProgress({ bars, quiet, write: err });
  const controller = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    if (++interrupts > 1) process.exit(130);
    err("\ninterrupting: finished answers are kept (Ctrl-C again to quit at once)");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);
  try {
    // A batch takes minutes to hours: each of its moves is said, so a quiet bar does not look stuck.
    const batch: BuildEvents["batch"] = quiet
      ? undefined
      : (b) => err(`batch ${b.id} (step '${b.step}'): ${b.status.replace("_", " ")}${b.total ? `, ${b.completed + b.failed}/${b.total} done` : ""}`);
    return await fn({ ...progress, batch, decided: verbose ? (m) => err(m) : undefined }, controller.signal);
  } finally {
    progress.stop();
    process.off("SIGINT", onSigint);
    process.off("SIGTERM", onSigint);
  }
}

function buildJson(result: BuildResult): Record<string, unknown> {
  return {
    samples: result.samples,
    requests: result.requests,
    cached: result.cached,
    failed: result.failed,
    dropped: result.dropped,
    pending: result.pending,
    held_back: result.heldBack,
    outputs: result.outputs,
    failures: result.failures,
    drops: result.drops,
    ...(result.target ? { target: result.target } : {}),
    ...(result.replicas ? { replicas: result.replicas } : {}),
    ...(result.shard ? { shard: `${result.shard.index}/${result.shard.count}` } : {}),
    cost_usd: result.costUsd,
    ...(result.remote
      ? { remote: { url: result.remote.remote, fetched: result.remote.fetched, uploaded: result.remote.uploaded, not_uploaded: result.remote.notUploaded } }
      : {}),
  };
}

/** The structured part of an error, for --json. */
function details(e: SynthbuildError): Record<string, unknown> {
  if (e instanceof VerifyError) return { problems: e.problems };
  if (e instanceof FrozenError) return { missing: e.missing };
  if (e instanceof EndpointError) return { problem: e.kind, endpoint: e.endpoint, model: e.model, step: e.step };
  if (e instanceof RemoteObjectError) return { problems: e.problems };
  if (e instanceof ManifestError || e instanceof ManifestSyntaxError) return { diagnostics: e.diagnostics.map(({ frame: _, ...d }) => d) };
  return {};
}

function shardOf(v: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(v);
  const index = Number(m?.[1]);
  const count = Number(m?.[2]);
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError("expected i/n with 1 ≤ i ≤ n, e.g. 2/4");
  return { index, count };
}

function positiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("expected a whole number of 1 or more");
  return n;
}

function positiveNumber(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError("expected a number above 0");
  return n;
}
