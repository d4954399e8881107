import type { BuildResult, DiffResult, PlanResult, ProbeResult, PullSummary, ShowResult, StatusResult, StepDrift } from "../index.js";

export function formatPlan(p: PlanResult): string {
  const lines = [`${p.samples} samples; a build would make ${p.requests} request${p.requests === 1 ? "" : "s"}`];
  const w = Math.max(4, ...p.steps.map((s) => s.id.length));
  lines.push(`  ${"step".padEnd(w)}  kind      total  cached  to run`);
  for (const s of p.steps)
    lines.push(
      `  ${s.id.padEnd(w)}  ${s.kind.padEnd(8)}  ${String(s.total).padStart(5)}  ${String(s.cached).padStart(6)}  ${String(s.to_run).padStart(6)}${s.batch ? "  by batch (half price)" : ""}`,
    );
  if (p.target)
    lines.push(
      `target.rows ${p.target.rows}: ${p.target.candidates} candidates planned, more if fewer rows survive (at most ${p.target.max_candidates})` +
        (p.stale ? `\n  why ${p.target.candidates}: ${p.target.why}` : ""),
    );
  if (p.pairwise?.length) {
    const covered = p.pairwise.reduce((n, x) => n + x.covered, 0);
    const total = p.pairwise.reduce((n, x) => n + x.total, 0);
    const short = p.pairwise.filter((x) => x.covered < x.total);
    lines.push(
      `pairwise coverage: ${covered} of ${total} value pairs` +
        (short.length ? `; missing: ${short.map((x) => `${x.a} × ${x.b} ${x.total - x.covered}`).join(", ")}` : " (every allowed pair)"),
    );
  }
  const e = p.estimate;
  if (p.requests)
    lines.push(
      `estimate: ~${e.input_tokens} input + ~${e.output_tokens} output tokens, ${e.cost_usd === null ? "cost unknown (no price for this model; set model.price)" : `~$${e.cost_usd.toFixed(4)}`}`,
    );
  if (p.stale?.length) {
    // Grouped by reason: "24 samples: place changed: 'Kyoto' → 'Osaka'" says more than 24 lines.
    const groups = new Map<string, string[]>();
    for (const s of p.stale) {
      const why = `at ${s.step}: ${s.reasons.join("; ")}`;
      const ids = groups.get(why);
      if (ids) ids.push(s.id);
      else groups.set(why, [s.id]);
    }
    lines.push("why:");
    for (const [why, ids] of [...groups].sort((a, b) => b[1].length - a[1].length)) {
      lines.push(`  ${ids.length} sample${ids.length === 1 ? "" : "s"} ${why}`);
      lines.push(`    e.g. ${ids.slice(0, 3).join(", ")}${ids.length > 3 ? ", …" : ""}`);
    }
    lines.push("(synthbuild show ID shows one sample; --json lists every id)");
  }
  return lines.join("\n");
}

export function formatBuild(r: BuildResult): string {
  if (r.shard)
    return [
      `shard ${r.shard.index}/${r.shard.count}: ${r.requests} request${r.requests === 1 ? "" : "s"}, ${r.failed} failed; ${r.heldBack} samples left to the other shards or to the steps after a dedupe` +
        (r.costUsd !== null && r.requests ? `, $${r.costUsd.toFixed(4)}` : ""),
      ...(r.remote
        ? [
            `remote ${r.remote.remote}: ${r.remote.uploaded} uploaded${r.remote.notUploaded.length ? `, ${r.remote.notUploaded.length} not uploaded (\`synthbuild push\` later)` : ""}`,
          ]
        : []),
      ...r.failures.slice(0, 20).map((f) => `  ${f.sample} at ${f.step}: ${f.reason}`),
      "no dist/ or lock written: once every shard is done, `synthbuild build` assembles them (steps after a dedupe can still need requests there; running the shards again makes them)",
    ].join("\n");
  const lines = [
    `built ${r.samples} samples: ${r.requests} request${r.requests === 1 ? "" : "s"}, ${r.cached} cached, ${r.dropped} dropped, ${r.failed} failed` +
      (r.pending ? `, ${r.pending} not built${r.heldBack ? ` (${r.heldBack} outside --limit)` : ""}` : "") +
      (r.costUsd !== null && r.requests ? `, $${r.costUsd.toFixed(4)}` : ""),
  ];
  for (const o of r.outputs) lines.push(`  ${o.path}  ${o.rows} rows`);
  if (r.replicas) lines.push(`answers by replica: ${r.replicas.map((x) => `${x.url} ${x.answers}`).join(", ")}`);
  if (r.drops.length) {
    lines.push("dropped by:");
    for (const d of r.drops) lines.push(`  ${d.step}  ${d.count}  e.g. ${d.samples[0]}: ${d.example}`);
  }
  if (r.target && !r.target.reached) {
    const t = r.target;
    const why = t.candidates >= t.max_candidates ? "max_candidates" : r.pending ? "samples not built yet" : "no combinations to repeat";
    lines.push(
      `target.rows ${t.rows} not reached: ${t.kept} rows from ${t.candidates} candidates (${why})` +
        (why === "max_candidates" ? `; raise target.max_candidates (${t.max_candidates}) or loosen the filters` : ""),
    );
  } else if (r.target) lines.push(`target.rows ${r.target.rows}: ${r.target.kept} rows from ${r.target.candidates} candidates`);
  if (r.samples > 0 && r.dropped === r.samples)
    lines.push(`every sample was dropped: the outputs have no rows (synthbuild show ${r.drops[0]?.samples[0] ?? "ID"} shows why)`);
  if (r.remote && (r.remote.fetched || r.remote.uploaded || r.remote.notUploaded.length))
    lines.push(
      `remote ${r.remote.remote}: ${r.remote.fetched} fetched, ${r.remote.uploaded} uploaded${r.remote.notUploaded.length ? `, ${r.remote.notUploaded.length} not uploaded (\`synthbuild push\` later)` : ""}`,
    );
  if (r.failures.length) {
    lines.push(`failed samples (retried on the next build):`);
    for (const f of r.failures.slice(0, 20)) lines.push(`  ${f.sample} at ${f.step}: ${f.reason}`);
    if (r.failures.length > 20) lines.push(`  … and ${r.failures.length - 20} more`);
  }
  if (r.budgetReached) lines.push(`--max-cost reached: ${r.pending} samples were not built; raise it and build again`);
  return lines.join("\n");
}

/** `synthbuild status`: one line per pending batch. */
export function formatStatus(r: StatusResult): string {
  if (!r.batches.length) return "no batches pending";
  const lines = [`${r.batches.length} batch${r.batches.length === 1 ? "" : "es"} pending:`];
  for (const b of r.batches) {
    const c = b.request_counts;
    const done = c ? `, ${c.completed} of ${c.total || b.requests} answered${c.failed ? `, ${c.failed} failed` : ""}` : `, ${b.requests} requests`;
    lines.push(
      `  ${b.id ?? b.input_file_id}  step '${b.step}' (${b.model} at ${b.endpoint}): ${b.status ?? "unknown"}${done}, submitted ${age(b.age_s)} ago${b.manifest ? ` by the build of ${b.manifest}` : ""}${b.cancelled ? "; cancel requested" : ""}${b.forgotten ? "; forgotten" : ""}${b.error ? `; ${b.error}` : ""}`,
    );
  }
  if (r.batches.some((b) => !b.cancelled && !b.forgotten && b.status && !["completed", "failed", "expired", "cancelled"].includes(b.status)))
    lines.push("the next `synthbuild build` collects their answers; `synthbuild status --cancel` cancels them");
  return lines.join("\n");
}

function age(s: number): string {
  return s < 120 ? `${s} s` : s < 7200 ? `${Math.round(s / 60)} min` : `${(s / 3600).toFixed(1)} h`;
}

export function formatProbe(r: ProbeResult): string {
  const lines = [`probe of step ${r.step}: ${r.model} at ${r.endpoint}`, "  concurrency  answers/s  p50 ms  p95 ms  refused  failed"];
  for (const l of r.levels)
    lines.push(
      `  ${String(l.concurrency).padStart(11)}  ${l.throughput.toFixed(1).padStart(9)}  ${String(l.p50_ms ?? "-").padStart(6)}  ${String(l.p95_ms ?? "-").padStart(6)}  ${String(l.refused).padStart(7)}  ${String(l.failed).padStart(6)}`,
    );
  if (r.knee !== null) lines.push(`knee at concurrency ${r.knee} (${r.best_throughput.toFixed(1)} answers/s at best): set model.concurrency: ${r.knee}`);
  return lines.join("\n");
}

export function formatShow(s: ShowResult): string {
  const lines = [`sample ${s.id}  (${s.status}${s.reason ? `: ${s.reason}` : ""})`];
  for (const [k, v] of Object.entries(s.values)) lines.push(`  ${k}: ${v}`);
  if (s.repeat) lines.push(`  repeat: ${s.repeat}`);
  for (const st of s.steps) {
    lines.push(
      "",
      `── ${st.id} (${st.kind}, ${st.status})${st.model ? `  model ${st.model}` : ""}${st.finish_reason ? `  finish ${st.finish_reason}` : ""}${st.request?.attempt ? `  rerolled: attempt ${st.request.attempt}` : ""}`,
    );
    if (st.request) for (const m of st.request.messages) lines.push(`  [${m.role}]`, indent(m.content));
    if (st.output !== undefined) lines.push("  [answer]", indent(st.output));
  }
  if (s.no_row) lines.push("", `── row: none (${s.no_row})`);
  for (const r of s.rows ?? []) {
    const where = `${r.path}${r.split !== undefined ? `  (split ${r.split})` : ""}`;
    if (r.left_out) lines.push("", `── row: none in ${where}: left out, ${r.left_out}`);
    else lines.push("", `── row in ${where}${r.in_dist ? "" : "  (not in dist/ yet: `synthbuild build` writes it)"}`, indent(JSON.stringify(r.record)));
  }
  return lines.join("\n");
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}

/** "12 answers (34.5 KiB) in 0.42 s, 120 KiB/s" */
export function formatTransfer(r: PullSummary): string {
  const rate = r.seconds > 0 ? `, ${kib(r.bytes / r.seconds)}/s` : "";
  return `${r.transferred} answer${r.transferred === 1 ? "" : "s"} (${kib(r.bytes)}) in ${r.seconds.toFixed(2)} s${rate}`;
}

export function transferJson(r: PullSummary, extra: Record<string, unknown>): Record<string, unknown> {
  return { remote: r.remote, keys: r.keys, transferred: r.transferred, present: r.present, bytes: r.bytes, seconds: r.seconds, ...extra };
}

function kib(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

export function formatDiff(d: DiffResult): string {
  const lines = [`${d.from} → ${d.to}`];
  if (d.manifest.length) lines.push("manifest:", ...d.manifest.map((c) => `  ${c}`));
  for (const [title, groups] of [
    ["added", d.added],
    ["removed", d.removed],
    ["changed", d.changed],
  ] as const) {
    const n = groups.reduce((a, g) => a + g.count, 0);
    if (!n) continue;
    lines.push(`${n} sample${n === 1 ? "" : "s"} ${title}:`);
    for (const g of groups) lines.push(`  ${String(g.count).padStart(5)}  ${g.cause}  (e.g. ${g.ids.slice(0, 3).join(", ")})`);
  }
  if (d.moved.length)
    lines.push(
      `${d.moved.length} row${d.moved.length === 1 ? "" : "s"} moved between splits: ${d.moved
        .slice(0, 5)
        .map((m) => `${m.id} ${m.from} → ${m.to}`)
        .join(", ")}`,
    );
  for (const o of d.outputs) if (o.changed) lines.push(`  ${o.path}: ${o.rows[0] ?? "-"} → ${o.rows[1] ?? "-"} rows`);
  if (lines.length === 1) lines.push("no change");
  return lines.join("\n");
}

export function formatDrift(steps: StepDrift[]): string {
  if (!steps.length) return "drift: no answers from a real endpoint to compare";
  const lines: string[] = [];
  for (const s of steps) {
    const now = `${s.now.model ?? "?"}${s.now.fingerprint ? ` (${s.now.fingerprint})` : ""}`;
    lines.push(
      `drift: step '${s.step}' — ${s.endpoint} serves ${now} now; ${s.drifted.length} answer${s.drifted.length === 1 ? "" : "s"} came from another snapshot`,
    );
    for (const a of s.answeredBy) lines.push(`  ${String(a.samples).padStart(5)}  ${a.model ?? "?"}${a.fingerprint ? ` (${a.fingerprint})` : ""}`);
  }
  return lines.join("\n");
}
