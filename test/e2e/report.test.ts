// biome-ignore-all lint/performance/useDomNodeTextContent: the page is checked as rendered, so innerText (layout-aware) is the point
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import { pathToFileURL } from "node:url";
import { type Browser, chromium, type Page } from "playwright-core";
import { runCliBounded as runCli } from "../helpers/faults.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/** Debian's chromium package; .ci/run installs it. The test installs nothing itself. */
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const NO_CHROMIUM = "Chromium is not installed (Debian: apt-get install chromium; .ci/run installs it), so the report is not checked as rendered";

const MANIFEST = `version: 1
name: report-check
seed: 11
model:
  provider: openai
  name: test-model
  base_url: \${TEST_BASE_URL}
  concurrency: 4
  price: { input_per_mtok: 1000, output_per_mtok: 1000 }
dimensions:
  genre: [comedy, horror, romance]
  place: [Paris, Kyoto]
  mood: [dark, light]
combine:
  mode: product
  exclude:
    - { genre: romance, place: Kyoto }
steps:
  - id: story
    generate: { prompt: "A {{ mood }} {{ genre }} story in {{ place }}" }
  - id: only_light
    filter: { where: 'mood == "light" or genre == "horror"' }
output: { path: dist/out.jsonl, format: prompt-completion, prompt: "{{ genre }} in {{ place }}", completion: "{{ story }}", split: { train: 0.5, validation: 0.5 } }
`;

describe("synthbuild report", () => {
  let server: TestServer;
  let project: TempProject;
  let browser: Browser | undefined;
  const env = () => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: "k" });
  before(async () => {
    server = await startTestServer({ answerWords: 20 });
    server.setSnapshot({ fingerprint: "fp_report_1" });
    project = await TempProject.create({ "dataset.yaml": MANIFEST });
    const b = await runCli(["build", "-q"], project.dir, env());
    assert.equal(b.status, 0, b.stderr);
    if (CHROMIUM) browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
    await server.close();
    await project.remove();
  });

  test("--json gives the page's data: counts, coverage with excluded pairs apart, drops, models and cost; no request made", async () => {
    const requests = server.stats().requests;
    const r = await runCli(["report", "-o", "out/report.html", "--json"], project.dir, env());
    assert.equal(r.status, 0, r.stderr);
    assert.equal(server.stats().requests, requests, "a report makes no request");
    const d = JSON.parse(r.stdout);
    // 3 × 2 × 2 = 12, less romance in Kyoto (2): 10 samples; dark ones dropped but horror's.
    assert.deepEqual(d.counts, { samples: 10, kept: 7, dropped: 3, failed: 0, pending: 0 });
    assert.equal(
      d.splits.reduce((n: number, s: { rows: number }) => n + s.rows, 0),
      7,
    );
    const genre = d.dimensions.find((x: { name: string }) => x.name === "genre");
    assert.deepEqual(
      genre.values.map((v: { value: string; samples: number; kept: number }) => [v.value, v.samples, v.kept]),
      [
        ["comedy", 4, 2],
        ["horror", 4, 4],
        ["romance", 2, 1],
      ],
    );
    const gp = d.pairs.find((p: { a: string; b: string }) => p.a === "genre" && p.b === "place");
    assert.equal(gp.total, 5, "romance × Kyoto is excluded, not missing");
    assert.equal(gp.covered, 5);
    assert.deepEqual(gp.excluded, [{ a: "romance", b: "Kyoto" }]);
    assert.equal(d.drops[0].step, "only_light");
    assert.equal(d.drops[0].count, 3);
    assert.equal(d.usage.length, 1);
    assert.deepEqual(d.usage[0].fingerprints, ["fp_report_1"]);
    assert.equal(d.usage[0].answers, 10);
    assert.ok(d.cost_usd > 0);
    assert.equal(d.rows.length, 10);
  });

  test("the page as Chromium renders it: every section, bars to scale, the excluded pair marked, the table filters; nothing fetched", async (t) => {
    if (!browser) {
      if (process.env.CI) assert.fail(`${NO_CHROMIUM}: in CI it must be there`);
      return void t.skip(NO_CHROMIUM);
    }
    const r = await runCli(["report", "-o", "out/report.html"], project.dir, env());
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /wrote .*out\/report\.html \(7 kept of 10 samples\)/);
    const page: Page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    const fetched: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
    page.on("request", (req) => fetched.push(req.url()));
    const url = pathToFileURL(`${project.dir}/out/report.html`).href;
    await page.goto(url);

    for (const h of [
      "Summary",
      "Coverage per dimension",
      "Coverage per pair of dimensions",
      "Lengths per step",
      "Dropped, by step",
      "Models, tokens and cost",
      "Samples",
    ])
      assert.ok(await page.getByRole("heading", { name: h, exact: true }).isVisible(), `${h} is shown`);
    assert.equal(await page.locator("#summary dd").first().innerText(), "10");

    // Coverage bars to scale: horror kept 4, comedy 2, of the same 4 samples.
    const bar = async (value: string) => (await page.locator(`[data-dimension="genre"] tr:has(th:text-is("${value}")) .b.kept`).boundingBox())!.width;
    const [horror, comedy] = [await bar("horror"), await bar("comedy")];
    assert.ok(horror > 0 && Math.abs(horror / comedy - 2) < 0.05, `horror's bar ${horror}px is twice comedy's ${comedy}px`);

    const excluded = page.locator('td.never[title="romance × Kyoto: excluded by the manifest"]');
    assert.equal(await excluded.innerText(), "–");
    assert.match(await page.locator("#pairs h3").first().innerText(), /5 of 5 pairs have a kept row \(100\.0%\)/);

    // The length histogram has drawn bars, the tallest as tall as its box.
    const heights = await page.locator('[data-step="story"] .col span').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
    assert.ok(heights.length >= 1 && Math.max(...heights) > 100, `bars ${heights}`);

    assert.match(await page.locator("#drops").innerText(), /only_light\s+3\s+where mood == "light" or genre == "horror" is false/);
    assert.match(await page.locator("#usage").innerText(), /story\s+test-model-\S+\s+fp_report_1\s+10/);

    // Typing in the filter leaves the rows that contain it.
    const rows = page.locator("#samples tbody tr");
    assert.equal(await rows.count(), 10);
    await page.locator("#filter").fill("Kyoto");
    assert.equal(await page.locator("#shown").innerText(), "4 shown");
    assert.equal(await page.locator("#samples tbody tr:visible").count(), 4);
    await page.locator("#filter").fill("");
    assert.equal(await page.locator("#samples tbody tr:visible").count(), 10);

    assert.deepEqual(errors, []);
    assert.deepEqual(fetched, [url], "the page fetches nothing but itself");
    await page.close();
  });

  test("a text that looks like HTML is shown as text, never run", async (t) => {
    if (!browser) return void t.skip(NO_CHROMIUM);
    const p = await TempProject.create({
      "dataset.yaml": `version: 1\nname: x\nmodel: { provider: echo }\ndimensions:\n  a: ['<img src=x onerror="document.title=1">', '<script>document.title=2</script>']\nsteps:\n  - id: s\n    generate: { prompt: "{{ a }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ a }}", completion: "{{ s }}" }\n`,
    });
    try {
      assert.equal((await runCli(["build", "-q"], p.dir, {})).status, 0);
      assert.equal((await runCli(["report"], p.dir, {})).status, 0);
      const page = await browser.newPage();
      await page.goto(pathToFileURL(`${p.dir}/report.html`).href);
      assert.equal(await page.title(), "x: synthbuild report");
      assert.ok(await page.getByText("<script>document.title=2</script>", { exact: true }).first().isVisible());
      await page.close();
    } finally {
      await p.remove();
    }
  });

  test("the report never replaces an input, the lock or an output", async () => {
    for (const out of ["dataset.yaml", "dataset.lock", "dist/out.train.jsonl", "dist/README.md", "dist", "cache/x.html"]) {
      const r = await runCli(["report", "-o", out], project.dir, env());
      assert.equal(r.status, 2, `${out}: ${r.stderr}`);
      assert.match(r.stderr, /the report would replace it|inside the cache|is a folder/);
      assert.doesNotMatch(r.stderr, /internal error/);
    }
    assert.match(await project.read("dataset.yaml"), /^version: 1/);
  });
});

test("plan gives pairwise coverage for combine: pairwise, excluded pairs not counted", async () => {
  const p = await TempProject.create({
    "dataset.yaml": `version: 1\nname: pw\nmodel: { provider: echo }\ndimensions:\n  a: [a1, a2, a3]\n  b: [b1, b2, b3]\n  c: [c1, c2]\ncombine:\n  mode: pairwise\n  exclude:\n    - { a: a1, b: b1 }\nsteps:\n  - id: s\n    generate: { prompt: "{{ a }} {{ b }} {{ c }}" }\noutput: { path: dist/x.jsonl, prompt: "{{ a }}", completion: "{{ s }}" }\n`,
  });
  try {
    const r = await runCli(["plan", "--json"], p.dir, {});
    assert.equal(r.status, 0, r.stderr);
    const pw = JSON.parse(r.stdout).pairwise as { a: string; b: string; covered: number; total: number }[];
    assert.deepEqual(
      pw.map((x) => [x.a, x.b, x.total]),
      [
        ["a", "b", 8],
        ["a", "c", 6],
        ["b", "c", 6],
      ],
    );
    assert.ok(
      pw.every((x) => x.covered === x.total),
      JSON.stringify(pw),
    );
    const text = await runCli(["plan"], p.dir, {});
    assert.match(text.stdout + text.stderr, /pairwise coverage: 20 of 20 value pairs \(every allowed pair\)/);
  } finally {
    await p.remove();
  }
});
