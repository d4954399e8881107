/**
 * End-to-end: every invalid manifest under test/fixtures/bad-manifests/ is run through the real CLI
 * binary (`synthbuild build --offline`). Each must fail with exit status 2 and a positioned
 * diagnostic (file:line:col, key path, message and, where given, hint) on stderr, print nothing on
 * stdout, show no stack trace, and write nothing.
 *
 * A case directory holds dataset.yaml (plus any data files it needs) and expect.json:
 *   { "line": L, "col": C, "path": "key.path", "message": "substring", "hint": "substring (optional)",
 *     "todo": "why the CLI does not do this yet (optional)" }
 * A case with `todo` documents a diagnostic that is wrong or missing today: it runs, but its
 * failure does not fail the suite (node:test's todo option).
 */
import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { copyFile, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { describe, test } from "node:test";
import { REPO, runCli } from "../helpers/cli.js";

const FIXTURES = join(REPO, "test", "fixtures", "bad-manifests");
const TIMEOUT_MS = 20_000;

interface Expect {
  line: number;
  col: number;
  path: string;
  message: string;
  hint?: string;
  todo?: string;
}

interface Case {
  name: string;
  dir: string;
  expect: Expect;
}

function loadCases(): Case[] {
  return readdirSync(FIXTURES)
    .filter((n) => /^\d+-/.test(n) && statSync(join(FIXTURES, n)).isDirectory())
    .sort()
    .map((name) => {
      const dir = join(FIXTURES, name);
      const expect = JSON.parse(readFileSync(join(dir, "expect.json"), "utf8")) as Expect;
      return { name, dir, expect };
    });
}

/**
 * Extra environment for the CLI (on top of the helper's clean one: no API key, no base URL, no
 * redirected cache, no colour): the variables the cases interpolate, and none they expect unset.
 */
const CASE_ENV: Record<string, string | undefined> = {
  SB_TEST_SET: "1",
  SB_TEST_PROVIDER: "openia",
  SB_TEST_UNSET_URL: undefined,
  FORCE_COLOR: undefined,
};

async function copyDir(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const e of await readdir(from, { withFileTypes: true })) {
    if (e.name === "expect.json") continue;
    const a = join(from, e.name);
    const b = join(to, e.name);
    // Links are copied as links: some cases are about where a link leads (out, or round in a circle).
    if (e.isSymbolicLink()) await symlink(await readlink(a), b);
    else if (e.isDirectory()) await copyDir(a, b);
    else await copyFile(a, b);
  }
}

/** Every file and folder under `dir` with its contents (folders as ""), keyed by relative path. */
async function snapshot(dir: string, root = dir, out = new Map<string, string>()): Promise<Map<string, string>> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    const rel = relative(root, p);
    if (e.isSymbolicLink()) out.set(rel, `-> ${await readlink(p)}`);
    else if (e.isDirectory()) {
      out.set(rel + "/", "");
      await snapshot(p, root, out);
    } else out.set(rel, await readFile(p, "utf8"));
  }
  return out;
}

interface Diagnostic {
  line: number;
  col: number;
  /** The header after `file:line:col `: `path: message`, or the message alone. */
  head: string;
  hint?: string;
}

const ANSI = /\x1b\[[0-9;]*m/g;

/** Split stderr into diagnostics: a `[error: ]dataset.yaml:L:C ...` header, its frame and its hint. */
function parseDiagnostics(stderr: string): Diagnostic[] {
  const out: Diagnostic[] = [];
  for (const line of stderr.replace(ANSI, "").split("\n")) {
    const m = /^(?:error: )?dataset\.yaml:(\d+):(\d+) (.*)$/.exec(line);
    if (m) {
      out.push({ line: Number(m[1]), col: Number(m[2]), head: m[3]! });
      continue;
    }
    const h = /^ {2}hint: (.*)$/.exec(line);
    const last = out[out.length - 1];
    if (h && last && last.hint === undefined) last.hint = h[1];
  }
  return out;
}

function matches(d: Diagnostic, e: Expect): boolean {
  if (d.line !== e.line || d.col !== e.col) return false;
  let message = d.head;
  if (e.path) {
    if (!d.head.startsWith(`${e.path}: `)) return false;
    message = d.head.slice(e.path.length + 2);
  }
  if (!message.includes(e.message)) return false;
  if (e.hint !== undefined && !(d.hint ?? "").includes(e.hint)) return false;
  return true;
}

const cases = loadCases();

test("the bad-manifest corpus has at least 36 cases, each with dataset.yaml and a well-formed expect.json", () => {
  assert.ok(cases.length >= 36, `only ${cases.length} cases`);
  for (const c of cases) {
    assert.ok(existsSync(join(c.dir, "dataset.yaml")), `${c.name}: no dataset.yaml`);
    const e = c.expect;
    assert.ok(Number.isInteger(e.line) && e.line >= 1, `${c.name}: line`);
    assert.ok(Number.isInteger(e.col) && e.col >= 1, `${c.name}: col`);
    assert.equal(typeof e.path, "string", `${c.name}: path`);
    assert.ok(typeof e.message === "string" && e.message.length > 0, `${c.name}: message`);
    assert.ok(e.hint === undefined || typeof e.hint === "string", `${c.name}: hint`);
    assert.ok(e.todo === undefined || typeof e.todo === "string", `${c.name}: todo`);
  }
});

describe("synthbuild build --offline rejects bad manifests", { concurrency: 4 }, () => {
  for (const c of cases) {
    // runCli is the helper's asynchronous run: with spawnSync the event loop would block and the
    // describe block's concurrency could not overlap the cases.
    test(c.name, { timeout: TIMEOUT_MS, ...(c.expect.todo ? { todo: c.expect.todo } : {}) }, async () => {
      // The project sits one level down in its own temp folder, so that a stray write beside the
      // project (e.g. an atomic-write temp file) is caught here and cleaned up with the rest.
      const root = await mkdtemp(join(tmpdir(), `sb-bad-${c.name.slice(0, 2)}-`));
      const project = join(root, "project");
      try {
        await copyDir(c.dir, project);
        const before = await snapshot(project);
        const r = await runCli(["build", "--offline"], project, CASE_ENV);
        const stderr = r.stderr.replace(ANSI, "");
        const show = `\n--- stderr ---\n${stderr}--- stdout ---\n${r.stdout}`;
        const e = c.expect;

        assert.doesNotMatch(stderr, /^ {4}at /m, `stack trace on stderr${show}`);
        assert.ok(!stderr.includes("internal error"), `internal error${show}`);
        assert.equal(r.status, 2, `exit status${show}`);
        assert.equal(r.stdout, "", `stdout not empty${show}`);

        const where = `dataset.yaml:${e.line}:${e.col}`;
        assert.ok(stderr.includes(where), `no diagnostic at ${where}${show}`);
        if (e.path) assert.ok(stderr.includes(`${e.path}: `), `path ${e.path} not on stderr${show}`);
        assert.ok(stderr.includes(e.message), `message ${JSON.stringify(e.message)} not on stderr${show}`);
        if (e.hint !== undefined) assert.ok(stderr.includes(e.hint), `hint ${JSON.stringify(e.hint)} not on stderr${show}`);
        const diags = parseDiagnostics(stderr);
        assert.ok(
          diags.some((d) => matches(d, e)),
          `no single diagnostic has ${where}, path ${JSON.stringify(e.path)}, message ${JSON.stringify(e.message)}${e.hint !== undefined ? ` and hint ${JSON.stringify(e.hint)}` : ""}${show}`,
        );

        for (const p of ["dist", "cache", "dataset.lock", ".dataset.building"]) assert.ok(!existsSync(join(project, p)), `${p} was written${show}`);
        assert.deepEqual(await snapshot(project), before, `the project folder changed${show}`);
        assert.deepEqual(await readdir(root), ["project"], `something was written beside the project folder${show}`);
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    });
  }
});
