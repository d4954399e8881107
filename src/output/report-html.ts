import type { DropCount } from "../lock/drops.js";

/** Everything the page shows, as data: `report --json` prints it, the page is made from it. */
export interface ReportData {
  name: string;
  tool: string;
  /** The lock's hash, when there is a lock. */
  lock: string | null;
  counts: { samples: number; kept: number; dropped: number; failed: number; pending: number };
  splits: { split: string; rows: number }[];
  /** Per dimension and value: samples made, and kept. */
  dimensions: { name: string; values: { value: string; samples: number; kept: number }[] }[];
  /** Per pair of dimensions: value pairs among kept samples, of all pairs there are. */
  pairs: { a: string; b: string; covered: number; total: number; cells?: { a: string; b: string; kept: number }[]; excluded?: { a: string; b: string }[] }[];
  /** Per step: samples that reached it and the length of what it gave, in characters. */
  steps: { id: string; kind: string; reached: number; histogram: { from: number; to: number; count: number }[]; median: number | null }[];
  drops: DropCount[];
  failures: { sample: string; step: string; reason: string }[];
  /** Per generate step and answering model: answers, tokens, cost (null: no price known). */
  usage: { step: string; model: string; fingerprints: string[]; answers: number; input_tokens: number; output_tokens: number; cost_usd: number | null }[];
  cost_usd: number | null;
  rows: { id: string; status: string; split: string | null; reason: string | null; values: Record<string, string>; texts: Record<string, string> }[];
  /** Rows left out of the table (it shows the first `rows`). */
  rows_omitted: number;
}

/**
 * The report as one HTML page with nothing outside it: no script, style, font or image from
 * anywhere else, so it opens from a disk, an attachment or a CI artifact alike. Everything is
 * drawn in HTML and CSS at build time; the only script filters the table of rows.
 */
export function renderReport(d: ReportData): string {
  const body = [
    `<header><h1>${esc(d.name)}</h1><p class="meta">synthbuild ${esc(d.tool)}${d.lock ? ` · lock ${esc(d.lock)}` : " · not built yet"}</p></header>`,
    summary(d),
    coverage(d),
    pairs(d),
    lengths(d),
    drops(d),
    failures(d),
    usage(d),
    rows(d),
  ].join("\n");
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<title>${esc(d.name)}: synthbuild report</title>
<style>${STYLE}</style>
</head>
<body>
${body}
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function summary(d: ReportData): string {
  const c = d.counts;
  const cells = [
    ["samples", c.samples],
    ["kept", c.kept],
    ["dropped", c.dropped],
    ["failed", c.failed],
    ["not built", c.pending],
    ...d.splits.map((s) => [`${s.split} rows`, s.rows] as const),
  ];
  const cost = d.cost_usd === null ? "unknown (no price for a model)" : `$${d.cost_usd.toFixed(4)}`;
  return section(
    "summary",
    "Summary",
    `<dl class="tiles">${cells.map(([k, v]) => `<div><dt>${esc(String(k))}</dt><dd>${v}</dd></div>`).join("")}<div><dt>cost</dt><dd>${esc(cost)}</dd></div></dl>` +
      (c.samples > 0 && c.kept === 0 ? `<p class="alarm">No sample was kept: the outputs have no rows.</p>` : ""),
  );
}

function coverage(d: ReportData): string {
  const blocks = d.dimensions.map((dim) => {
    const max = Math.max(1, ...dim.values.map((v) => v.samples));
    const missing = dim.values.filter((v) => v.kept === 0).length;
    const rows = dim.values
      .map(
        (v) =>
          `<tr${v.kept === 0 ? ' class="none"' : ""}><th scope="row">${esc(v.value)}</th><td class="num">${v.kept}</td><td class="num">${v.samples}</td>` +
          `<td class="bar"><span class="b kept" style="width:${pct(v.kept, max)}"></span><span class="b lost" style="width:${pct(v.samples - v.kept, max)}"></span></td></tr>`,
      )
      .join("");
    return `<div class="dim" data-dimension="${esc(dim.name)}"><h3>${esc(dim.name)} <small>${dim.values.length} values${missing ? `, <b>${missing} with no kept row</b>` : ""}</small></h3>
<table class="coverage"><thead><tr><th>value</th><th>kept</th><th>samples</th><th></th></tr></thead><tbody>${rows}</tbody></table></div>`;
  });
  return section("coverage", "Coverage per dimension", blocks.join("") || "<p>No dimensions.</p>");
}

function pairs(d: ReportData): string {
  if (!d.pairs.length) return "";
  const blocks = d.pairs.map((p) => {
    const head = `<h3>${esc(p.a)} × ${esc(p.b)} <small>${p.covered} of ${p.total} pairs have a kept row (${pct(p.covered, p.total)})</small></h3>`;
    if (!p.cells) return `<div class="pair">${head}</div>`;
    const as = [...new Set(d.dimensions.find((x) => x.name === p.a)!.values.map((v) => v.value))];
    const bs = [...new Set(d.dimensions.find((x) => x.name === p.b)!.values.map((v) => v.value))];
    const at = new Map(p.cells.map((c) => [JSON.stringify([c.a, c.b]), c.kept]));
    const never = new Set((p.excluded ?? []).map((c) => JSON.stringify([c.a, c.b])));
    const max = Math.max(1, ...p.cells.map((c) => c.kept));
    const grid = as
      .map(
        (a) =>
          `<tr><th scope="row">${esc(a)}</th>${bs
            .map((b) => {
              const k = JSON.stringify([a, b]);
              if (never.has(k)) return `<td class="cell never" title="${esc(`${a} × ${b}: excluded by the manifest`)}">–</td>`;
              const n = at.get(k) ?? 0;
              return `<td class="cell${n ? "" : " zero"}" style="--v:${(n / max).toFixed(3)}" title="${esc(`${a} × ${b}: ${n}`)}">${n}</td>`;
            })
            .join("")}</tr>`,
      )
      .join("");
    return `<div class="pair">${head}<table class="matrix"><thead><tr><th></th>${bs.map((b) => `<th>${esc(b)}</th>`).join("")}</tr></thead><tbody>${grid}</tbody></table></div>`;
  });
  return section("pairs", "Coverage per pair of dimensions", blocks.join(""));
}

function lengths(d: ReportData): string {
  const blocks = d.steps
    .filter((s) => s.histogram.length)
    .map((s) => {
      const max = Math.max(1, ...s.histogram.map((b) => b.count));
      const bars = s.histogram
        .map((b) => `<div class="col" title="${b.from}–${b.to} chars: ${b.count}"><span style="height:${pct(b.count, max)}"></span><i>${b.count}</i></div>`)
        .join("");
      const first = s.histogram[0]!;
      const last = s.histogram[s.histogram.length - 1]!;
      return `<div class="hist" data-step="${esc(s.id)}"><h3>${esc(s.id)} <small>${esc(s.kind)}, ${s.reached} samples, median ${s.median} chars</small></h3><div class="bars">${bars}</div><div class="axis"><span>${first.from}</span><span>${last.to} chars</span></div></div>`;
    });
  return section("lengths", "Lengths per step", blocks.join("") || "<p>No step has output yet.</p>");
}

function drops(d: ReportData): string {
  if (!d.drops.length) return section("drops", "Dropped", "<p>No sample was dropped.</p>");
  const rows = d.drops
    .map(
      (x) =>
        `<tr><th scope="row">${esc(x.step)}</th><td class="num">${x.count}</td><td>${esc(x.example)}</td><td><code>${x.samples.map(esc).join(" ")}</code></td></tr>`,
    )
    .join("");
  return section(
    "drops",
    "Dropped, by step",
    `<table><thead><tr><th>step</th><th>samples</th><th>for example</th><th>ids</th></tr></thead><tbody>${rows}</tbody></table>`,
  );
}

function failures(d: ReportData): string {
  if (!d.failures.length) return "";
  const rows = d.failures
    .slice(0, 200)
    .map((f) => `<tr><td><code>${esc(f.sample)}</code></td><th scope="row">${esc(f.step)}</th><td>${esc(f.reason)}</td></tr>`)
    .join("");
  return section(
    "failures",
    `Failed (${d.failures.length})`,
    `<table><thead><tr><th>sample</th><th>step</th><th>reason</th></tr></thead><tbody>${rows}</tbody></table>`,
  );
}

function usage(d: ReportData): string {
  if (!d.usage.length) return "";
  const rows = d.usage
    .map(
      (u) =>
        `<tr><th scope="row">${esc(u.step)}</th><td>${esc(u.model)}</td><td>${u.fingerprints.map((f) => `<code>${esc(f)}</code>`).join(" ") || "—"}</td><td class="num">${u.answers}</td><td class="num">${u.input_tokens}</td><td class="num">${u.output_tokens}</td><td class="num">${u.cost_usd === null ? "?" : `$${u.cost_usd.toFixed(4)}`}</td></tr>`,
    )
    .join("");
  return section(
    "usage",
    "Models, tokens and cost",
    `<table><thead><tr><th>step</th><th>answered by</th><th>fingerprints</th><th>answers</th><th>tokens in</th><th>tokens out</th><th>cost</th></tr></thead><tbody>${rows}</tbody></table>`,
  );
}

function rows(d: ReportData): string {
  const dims = d.dimensions.map((x) => x.name);
  const texts = [...new Set(d.rows.flatMap((r) => Object.keys(r.texts)))];
  const head = `<tr><th>id</th><th>status</th><th>split</th>${dims.map((n) => `<th>${esc(n)}</th>`).join("")}${texts.map((n) => `<th>${esc(n)}</th>`).join("")}</tr>`;
  const body = d.rows
    .map(
      (r) =>
        `<tr class="${esc(r.status)}"><td><code>${esc(r.id)}</code></td><td title="${esc(r.reason ?? "")}">${esc(r.status)}</td><td>${esc(r.split ?? "")}</td>` +
        dims.map((n) => `<td>${esc(r.values[n] ?? "")}</td>`).join("") +
        texts.map((n) => `<td class="text">${esc(r.texts[n] ?? "")}</td>`).join("") +
        "</tr>",
    )
    .join("");
  const omitted = d.rows_omitted ? `<p class="meta">The first ${d.rows.length} samples; ${d.rows_omitted} more are not shown (--rows sets how many).</p>` : "";
  return section(
    "rows",
    "Samples",
    `<p><label>Show rows containing <input id="filter" type="search" placeholder="text, value, status or id"></label> <span id="shown">${d.rows.length} shown</span></p>${omitted}<div class="scroll"><table id="samples"><thead>${head}</thead><tbody>${body}</tbody></table></div>`,
  );
}

function section(id: string, title: string, html: string): string {
  return `<section id="${id}"><h2>${esc(title)}</h2>${html}</section>`;
}

function pct(n: number, of: number): string {
  return `${of ? ((100 * n) / of).toFixed(1) : "0.0"}%`;
}

function esc(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `
:root { font: 14px/1.45 system-ui, sans-serif; color: #1b1f24; background: #fff; }
body { max-width: 1200px; margin: 0 auto; padding: 1rem 1.5rem 4rem; }
h1 { margin: .2rem 0; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #d8dee4; padding-bottom: .3rem; }
h3 { font-size: 1rem; margin: 1.2rem 0 .4rem; } small { font-weight: normal; color: #57606a; }
.meta { color: #57606a; } .alarm { color: #b42318; font-weight: 600; }
.tiles { display: flex; flex-wrap: wrap; gap: .6rem; margin: 0; }
.tiles div { border: 1px solid #d8dee4; border-radius: 6px; padding: .4rem .8rem; min-width: 6rem; }
.tiles dt { color: #57606a; font-size: .85rem; } .tiles dd { margin: 0; font-size: 1.3rem; font-weight: 600; }
table { border-collapse: collapse; } th, td { padding: .2rem .5rem; text-align: left; vertical-align: top; }
thead th { border-bottom: 1px solid #d8dee4; font-size: .85rem; color: #57606a; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.dim { display: inline-block; vertical-align: top; margin-right: 2rem; }
td.bar { width: 220px; white-space: nowrap; } .b { display: inline-block; height: .8rem; vertical-align: middle; }
.b.kept { background: #2f81f7; } .b.lost { background: #d0d7de; } tr.none th { color: #b42318; }
.matrix td.cell { text-align: center; min-width: 1.8rem; background: rgba(47,129,247,calc(.1 + .8 * var(--v))); }
.matrix td.zero { background: #ffebe9; color: #b42318; } .matrix td.never { background: #f6f8fa; color: #8c959f; }
.hist { display: inline-block; vertical-align: top; margin-right: 2rem; }
.bars { display: flex; align-items: flex-end; gap: 2px; height: 120px; width: 300px; border-bottom: 1px solid #8c959f; }
.col { flex: 1; height: 100%; display: flex; flex-direction: column-reverse; position: relative; }
.col span { display: block; background: #2f81f7; min-height: 1px; } .col i { font-style: normal; font-size: .7rem; color: #57606a; text-align: center; }
.axis { display: flex; justify-content: space-between; width: 300px; color: #57606a; font-size: .8rem; }
.scroll { overflow-x: auto; } #samples td.text { white-space: pre-wrap; max-width: 36rem; min-width: 16rem; }
#samples tr.dropped, #samples tr.failed { color: #8c959f; } #samples tr[hidden] { display: none; }
input[type=search] { padding: .2rem .4rem; width: 18rem; }
`;

const SCRIPT = `
(() => {
  const input = document.getElementById("filter");
  const rows = [...document.querySelectorAll("#samples tbody tr")];
  const shown = document.getElementById("shown");
  input.addEventListener("input", () => {
    const q = input.value.trim().toLowerCase();
    let n = 0;
    for (const r of rows) {
      const hit = !q || r.textContent.toLowerCase().includes(q);
      r.hidden = !hit;
      if (hit) n++;
    }
    shown.textContent = n + " shown";
  });
})();
`;
