import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cp, mkdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { concatenatedContent, startTestServer, type TestServer } from "../server/openai-test-server.js";

/**
 * `synthbuild reroll` (issue 11) through the real binary: new answers for chosen samples, recorded
 * in the lock as an attempt, so that a rerolled release rebuilds byte for byte from lock + cache.
 * The test server answers as a pure function of the request, so a new answer means a new request.
 */

const KEY = "sk-reroll";
const manifest = (o: { outline?: string; places?: string } = {}) => `version: 1
name: reroll
seed: 5
model: { name: gpt-4o-mini, base_url: "\${TEST_BASE_URL}", params: { temperature: 1, max_tokens: 30 }, concurrency: 4 }
dimensions:
  genre: [sf, noir, western]
  place: [${o.places ?? "Paris, Kyoto"}]
steps:
  - id: outline
    generate: { prompt: "${o.outline ?? "{{ nonce }} A {{ genre }} story in {{ place }}."}" }
  - id: story
    generate: { prompt: "Expand: {{ outline }}" }
output: { path: dist/out.jsonl, format: openai-chat, prompt: "{{ genre }} in {{ place }}", completion: "{{ story }}" }
`;

const gitEnv = { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" };
const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8", env: { ...process.env, ...gitEnv } });
const lines = (text: string) => text.trimEnd().split("\n");
/** Sample lines of a lock, by id. */
const sampleLines = (lock: string) =>
  new Map(
    lines(lock).flatMap((l) => {
      const o = JSON.parse(l);
      return typeof o.id === "string" && o.values ? [[o.id as string, l] as const] : [];
    }),
  );
/** The row a sample wrote: its line of dist/out.jsonl, found by its prompt. */
const rowOf = (dist: string, prompt: string) => lines(dist).find((l) => JSON.parse(l).messages[0].content === prompt)!;

describe("reroll", { concurrency: false }, () => {
  let server: TestServer;
  let root: TempProject;
  before(async () => {
    server = await startTestServer({});
    root = await TempProject.create({});
  });
  after(async () => {
    await server.close();
    await root.remove();
  });
  const env = (extra: Record<string, string> = {}) => ({ TEST_BASE_URL: server.baseURL, OPENAI_API_KEY: KEY, ...extra });
  const sb = async (cwd: string, args: string[], e: Record<string, string> = env()) => {
    const r = await runCli(args, cwd, e);
    return { ...r, json: r.stdout.trim().startsWith("{") ? JSON.parse(r.stdout) : undefined };
  };
  /** A built project of its own, and the id of its sample `genre in place`. */
  const project = async (name: string, o: { outline?: string; places?: string } = {}) => {
    const dir = join(root.dir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "dataset.yaml"), manifest(o));
    const b = await sb(dir, ["build", "--json"]);
    assert.equal(b.status, 0, b.stderr);
    const show = await sb(dir, ["plan", "--json"]);
    assert.equal(show.status, 0);
    const idOf = async (genre: string, place: string) => {
      for (const [id, l] of sampleLines(await readFile(join(dir, "dataset.lock"), "utf8"))) {
        const v = JSON.parse(l).values;
        if (v.genre === genre && v.place === place) return id;
      }
      throw new Error(`no sample ${genre} × ${place}`);
    };
    return { dir, idOf, read: (p: string) => readFile(join(dir, p), "utf8") };
  };

  test("reroll one sample: its two requests again, its row and lock line change, nothing else; then a no-op, and --frozen from a copy", async () => {
    const p = await project("one");
    const id = await p.idOf("noir", "Kyoto");
    const [distBefore, lockBefore] = [await p.read("dist/out.jsonl"), await p.read("dataset.lock")];
    server.reset();
    const r = await sb(p.dir, ["reroll", id.slice(0, 6), "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.json.rerolled, [{ sample: id, step: "outline", attempt: 1 }]);
    assert.match(r.stderr, new RegExp(`rerolled ${id} step 'outline': attempt 1`));
    // The outline drawn again, and the story that reads it: nothing for any other sample.
    assert.equal(server.requests.length, 2);
    assert.equal(r.json.build.requests, 2);
    const sent = server.requests.map((q) => concatenatedContent(q.body));
    assert.equal(sent.filter((t) => t.endsWith("A noir story in Kyoto.")).length, 1, sent.join("\n"));
    assert.equal(sent.filter((t) => t.startsWith("Expand: ")).length, 1, sent.join("\n"));
    const [distAfter, lockAfter] = [await p.read("dist/out.jsonl"), await p.read("dataset.lock")];
    assert.notEqual(rowOf(distAfter, "noir in Kyoto"), rowOf(distBefore, "noir in Kyoto"));
    const changedRows = lines(distAfter).filter((l) => !lines(distBefore).includes(l));
    assert.equal(changedRows.length, 1, "every other row is byte for byte what it was");
    const [before, after] = [sampleLines(lockBefore), sampleLines(lockAfter)];
    for (const [sid, line] of before) if (sid !== id) assert.equal(after.get(sid), line, `lock line of ${sid} unchanged`);
    assert.deepEqual(JSON.parse(after.get(id)!).attempts, { outline: 1 });

    server.reset();
    const again = await sb(p.dir, ["build", "--json"]);
    assert.equal(again.status, 0, again.stderr);
    assert.equal(again.json.requests, 0);
    assert.equal(await p.read("dataset.lock"), lockAfter);

    // A teammate with the manifest, the lock and the cache rebuilds the rerolled release exactly.
    const copy = join(root.dir, "one-copy");
    await mkdir(copy);
    for (const f of ["dataset.yaml", "dataset.lock"]) await cp(join(p.dir, f), join(copy, f));
    await cp(join(p.dir, "cache"), join(copy, "cache"), { recursive: true });
    server.reset();
    const frozen = await sb(copy, ["build", "--frozen", "--json"]);
    assert.equal(frozen.status, 0, frozen.stderr);
    assert.equal(server.requests.length, 0);
    assert.equal(await readFile(join(copy, "dist/out.jsonl"), "utf8"), distAfter);
    assert.equal(await readFile(join(copy, "dataset.lock"), "utf8"), lockAfter);
    assert.equal((await sb(p.dir, ["verify"])).status, 0);

    // An unrelated edit walks every sample again: the rerolled one keeps its attempt and its answer.
    await writeFile(join(p.dir, "dataset.yaml"), manifest({ places: "Paris, Kyoto, Lagos" }));
    server.reset();
    const grown = await sb(p.dir, ["build", "--json"]);
    assert.equal(grown.status, 0, grown.stderr);
    assert.equal(grown.json.requests, 6, "the three new samples' two steps, and nothing else");
    assert.equal(sampleLines(await p.read("dataset.lock")).get(id), after.get(id));
  });

  test("rerolling twice: attempt 2, a third distinct answer; plan --explain says why before the build", async () => {
    const p = await project("twice");
    const id = await p.idOf("sf", "Paris");
    const answers = [rowOf(await p.read("dist/out.jsonl"), "sf in Paris")];
    assert.equal((await sb(p.dir, ["reroll", id])).status, 0);
    answers.push(rowOf(await p.read("dist/out.jsonl"), "sf in Paris"));
    await cp(join(p.dir, "dataset.lock"), join(p.dir, "attempt1.lock"));
    const recorded = await sb(p.dir, ["reroll", id, "--no-build", "--json"]);
    assert.equal(recorded.status, 0, recorded.stderr);
    assert.deepEqual(recorded.json.rerolled, [{ sample: id, step: "outline", attempt: 2 }]);
    assert.equal(recorded.json.build, null);
    assert.match(recorded.stderr, /run `synthbuild build`/);
    const explained = await sb(p.dir, ["plan", "--explain", "--json"]);
    assert.equal(explained.json.requests, 2);
    assert.deepEqual(
      explained.json.stale.map((s: { id: string; reasons: string[] }) => [s.id, s.reasons]),
      [[id, ["rerolled (attempt 2)"]]],
    );
    server.reset();
    const b = await sb(p.dir, ["build", "--json"]);
    assert.equal(b.json.requests, 2);
    answers.push(rowOf(await p.read("dist/out.jsonl"), "sf in Paris"));
    assert.equal(new Set(answers).size, 3, "three draws, three answers");
    // The review of it: one sample changed, because it was rerolled (not because its step changed).
    const d = await sb(p.dir, ["diff", "attempt1.lock", "dataset.lock", "--json"]);
    assert.equal(d.status, 0, d.stderr);
    assert.deepEqual(d.json.changed, [{ cause: "step 'outline' rerolled", count: 1, ids: [id] }]);
    assert.deepEqual(JSON.parse(sampleLines(await p.read("dataset.lock")).get(id)!).attempts, { outline: 2 });
    const shown = await sb(p.dir, ["show", id.slice(0, 8)]);
    assert.match(shown.stdout, /── outline \(generate, cached\).*rerolled: attempt 2/);
    assert.doesNotMatch(shown.stdout, /── story .*rerolled/);
  });

  test("--step rerolls a later step only; a template without {{ nonce }} still gets a request, and a same answer is said", async () => {
    const p = await project("step", { outline: "A {{ genre }} story in {{ place }}." });
    const id = await p.idOf("western", "Paris");
    server.reset();
    const r = await sb(p.dir, ["reroll", id, "--step", "story", "--json"]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.json.rerolled, [{ sample: id, step: "story", attempt: 1 }]);
    // The request is the same text (no nonce to change), but it is a new request, not the cached answer.
    assert.equal(server.requests.length, 1);
    assert.match(concatenatedContent(server.requests[0]!.body), /^Expand: /);
    // This server, like a model at temperature 0, answers the same text the same way.
    assert.deepEqual(r.json.same_answer, [id]);
    assert.match(r.stderr, /same text as before/);
  });

  test("ids that name no sample, or more than one, and steps that cannot be rerolled: exit 2, nothing written", async () => {
    const p = await project("bad");
    const lock = await p.read("dataset.lock");
    const unknown = await sb(p.dir, ["reroll", "ffffffffffffffff"]);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /no sample with id ffffffffffffffff/);
    assert.match(unknown.stderr, /hint:/);
    const notHex = await sb(p.dir, ["reroll", "zz", "--json"]);
    assert.equal(notHex.status, 2);
    assert.equal(JSON.parse(notHex.stdout).error.exit_code, 2);
    const id = await p.idOf("sf", "Kyoto");
    const noStep = await sb(p.dir, ["reroll", id, "--step", "nope"]);
    assert.equal(noStep.status, 2);
    assert.match(noStep.stderr, /--step takes one of: outline, story/);
    assert.equal(await p.read("dataset.lock"), lock);
    // Many samples: some share a first hex digit, and that prefix names them all.
    const many = join(root.dir, "many");
    await mkdir(many);
    await writeFile(join(many, "dataset.yaml"), manifest({ places: Array.from({ length: 12 }, (_, i) => `p${i}`).join(", ") }));
    const ids = (await sb(many, ["plan", "--explain", "--json"])).json.stale.map((s: { id: string }) => s.id) as string[];
    const shared = ids.find((a) => ids.some((b) => b !== a && b[0] === a[0]))!;
    const ambiguous = await sb(many, ["reroll", shared[0]!]);
    assert.equal(ambiguous.status, 2);
    assert.match(ambiguous.stderr, /matches \d+ samples/);
    assert.match(ambiguous.stderr, new RegExp(shared));
  });

  test("synthbuild lock keeps attempts: its own, and both sides of a conflicted merge, even with dataset.lock -merge", async () => {
    const p = await project("merge");
    const repo = p.dir;
    await writeFile(join(repo, ".gitignore"), "cache/\ndist/\n");
    await writeFile(join(repo, ".gitattributes"), "dataset.lock -merge\n");
    git(repo, "init", "-q", "-b", "main");
    git(repo, "add", ".");
    git(repo, "commit", "-qm", "release 1");
    const [a, b] = [await p.idOf("sf", "Paris"), await p.idOf("western", "Kyoto")];
    git(repo, "checkout", "-q", "-b", "reroll-a");
    assert.equal((await sb(repo, ["reroll", a])).status, 0);
    git(repo, "commit", "-qam", "reroll a");
    git(repo, "checkout", "-q", "main");
    git(repo, "checkout", "-q", "-b", "reroll-b");
    assert.equal((await sb(repo, ["reroll", b])).status, 0);
    git(repo, "commit", "-qam", "reroll b");
    // Without markers: git keeps this branch's lock and flags the conflict.
    assert.throws(() => git(repo, "merge", "-q", "reroll-a"));
    assert.doesNotMatch(await p.read("dataset.lock"), /<<<<<<< /);
    server.reset();
    const l = await sb(repo, ["lock", "--json"]);
    assert.equal(l.status, 0, l.stderr);
    assert.equal(server.requests.length, 0);
    const merged = sampleLines(await p.read("dataset.lock"));
    assert.deepEqual(JSON.parse(merged.get(a)!).attempts, { outline: 1 }, "the other side's reroll");
    assert.deepEqual(JSON.parse(merged.get(b)!).attempts, { outline: 1 }, "this side's reroll");
    git(repo, "add", "dataset.lock");
    git(repo, "commit", "-qm", "merge");
    // Resolved: the lock alone holds them now, and `lock` rewrites it byte for byte.
    const resolved = await p.read("dataset.lock");
    const again = await sb(repo, ["lock", "--json"]);
    assert.equal(again.json.written, false);
    assert.equal(await p.read("dataset.lock"), resolved);
    const built = await sb(repo, ["build", "--frozen", "--json"]);
    assert.equal(built.status, 0, built.stderr);
    assert.equal(server.requests.length, 0);
  });

  test("a lock with conflict markers: its attempts are read from both sides' lines", async () => {
    const p = await project("markers");
    const id = await p.idOf("noir", "Paris");
    assert.equal((await sb(p.dir, ["reroll", id])).status, 0);
    const lock = await p.read("dataset.lock");
    const line = sampleLines(lock).get(id)!;
    const old = line.replace('{"attempts":{"outline":1},', "{");
    await writeFile(join(p.dir, "dataset.lock"), lock.replace(line, `<<<<<<< HEAD\n${old}\n=======\n${line}\n>>>>>>> theirs`));
    server.reset();
    const l = await sb(p.dir, ["lock", "--json"]);
    assert.equal(l.status, 0, l.stderr);
    assert.equal(await p.read("dataset.lock"), lock);
    assert.equal(server.requests.length, 0);
  });
});
