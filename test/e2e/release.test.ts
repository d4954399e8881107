import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Cache, serializeEntry } from "../../src/cache/store.js";
import { requestKeyV1 } from "../../src/plan/request.js";
import { initHashing } from "../../src/util/hash.js";
import { storedKeys } from "../helpers/cache-files.js";
import { runCli } from "../helpers/cli.js";
import { TempProject } from "../helpers/project.js";
import { startTestServer, type TestServer } from "../server/openai-test-server.js";

/**
 * Release tooling end to end (issue 8, part 3): the README's release workflow as written, a merge
 * of two rebuilt branches, `diff` between releases, drift of the answering snapshot, and the
 * migration of a key-version-1 cache.
 */

const KEY = "sk-release";
const manifest = (o: { genres?: string; places?: string; template?: string; temperature?: number } = {}) => `version: 1
name: release
seed: 3
model: { name: gpt-4o-mini, base_url: "\${TEST_BASE_URL}", params: { temperature: ${o.temperature ?? 1}, max_tokens: 30 }, concurrency: 4 }
dimensions:
  genre: [${o.genres ?? "sf, noir"}]
  # Each list on its own lines, so that branches editing different lists merge in git.
  #
  place: [${o.places ?? "Paris, Kyoto"}]
steps:
  - id: outline
    generate: { prompt: "${o.template ?? "{{ nonce }} A {{ genre }} story in {{ place }}."}" }
output: { path: dist/out.jsonl, format: openai-chat, prompt: "{{ genre }} in {{ place }}", completion: "{{ outline }}", split: { train: 0.5, validation: 0.5 } }
cache: { remote: ../remote }
`;

const gitEnv = { GIT_AUTHOR_NAME: "t", GIT_AUTHOR_EMAIL: "t@t", GIT_COMMITTER_NAME: "t", GIT_COMMITTER_EMAIL: "t@t" };
const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8", env: { ...process.env, ...gitEnv } });
const json = (s: string) => JSON.parse(s);

describe("releases", { concurrency: false }, () => {
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
    return { ...r, json: r.stdout.trim().startsWith("{") ? json(r.stdout) : undefined };
  };

  test("the README's release workflow: commit, push, a teammate's clone, pull, frozen build", async () => {
    const repo = join(root.dir, "repo");
    await root.write({ "repo/dataset.yaml": manifest(), "repo/.gitignore": "cache/\ndist/\n" });
    git(repo, "init", "-q", "-b", "main");
    // As the README says:
    assert.equal((await sb(repo, ["build"])).status, 0);
    git(repo, "add", "dataset.yaml", "dataset.lock", ".gitignore");
    git(repo, "commit", "-qm", "release 1");
    git(repo, "tag", "v1");
    const pushed = await sb(repo, ["push", "--json"]);
    assert.equal(pushed.status, 0, pushed.stderr);

    const clone = join(root.dir, "clone");
    git(root.dir, "clone", "-q", repo, clone);
    server.reset();
    const pulled = await sb(clone, ["pull", "--json"], { TEST_BASE_URL: server.baseURL });
    assert.equal(pulled.status, 0, pulled.stderr);
    assert.equal(pulled.json.transferred, 4);
    const frozen = await sb(clone, ["build", "--frozen", "--json"], { TEST_BASE_URL: server.baseURL });
    assert.equal(frozen.status, 0, frozen.stderr);
    assert.equal(server.requests.length, 0, "a teammate rebuilds the release without one request, and without a key");
    assert.equal(await readFile(join(clone, "dist/out.train.jsonl"), "utf8"), await readFile(join(repo, "dist/out.train.jsonl"), "utf8"));
    assert.equal(await readFile(join(clone, "dist/out.validation.jsonl"), "utf8"), await readFile(join(repo, "dist/out.validation.jsonl"), "utf8"));
    assert.equal(await readFile(join(clone, "dataset.lock"), "utf8"), await readFile(join(repo, "dataset.lock"), "utf8"));
  });

  test("two branches that both rebuilt: `synthbuild lock` writes the merged lock from the cache, with no request", async () => {
    const repo = join(root.dir, "repo");
    git(repo, "checkout", "-q", "-b", "more-genres");
    await writeFile(join(repo, "dataset.yaml"), manifest({ genres: "sf, noir, western" }));
    assert.equal((await sb(repo, ["build"])).status, 0);
    git(repo, "commit", "-qam", "a genre");
    git(repo, "checkout", "-q", "main");
    git(repo, "checkout", "-q", "-b", "more-places");
    await writeFile(join(repo, "dataset.yaml"), manifest({ places: "Paris, Kyoto, Lagos" }));
    assert.equal((await sb(repo, ["build"])).status, 0);
    git(repo, "commit", "-qam", "a place");
    // The manifest merges (different lines); the locks conflict.
    assert.throws(() => git(repo, "merge", "-q", "more-genres"));
    assert.match(await readFile(join(repo, "dataset.lock"), "utf8"), /<<<<<<< /);
    assert.equal(
      await readFile(join(repo, "dataset.yaml"), "utf8"),
      manifest({ genres: "sf, noir, western", places: "Paris, Kyoto, Lagos" }).replace(/\n$/, "\n"),
    );
    server.reset();
    const l = await sb(repo, ["lock", "--json"]);
    assert.equal(l.status, 1, l.stderr);
    // western × Lagos was built on neither branch: named, not requested.
    assert.equal(l.json.missing.length, 1);
    assert.equal(server.requests.length, 0);
    assert.match(l.stderr, /1 lack an answer/);
    const b = await sb(repo, ["build", "--json"]);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(b.json.requests, 1);
    git(repo, "commit", "-qam", "merge");
  });

  test("diff: samples added and removed by value, changed by step part, rows moved, outputs", async () => {
    const repo = join(root.dir, "repo");
    const byTag = await sb(repo, ["diff", "v1", "--json"]);
    assert.equal(byTag.status, 0, byTag.stderr);
    assert.deepEqual(
      byTag.json.added.map((g: { cause: string; count: number }) => [g.cause, g.count]),
      [
        ["genre 'western' added", 3],
        ["place 'Lagos' added", 2],
      ],
    );
    await writeFile(join(repo, "dataset.yaml"), manifest({ genres: "sf, western", places: "Paris, Kyoto, Lagos", temperature: 0.7 }));
    assert.equal((await sb(repo, ["build"])).status, 0);
    const d = await sb(repo, ["diff", "--json"]);
    assert.equal(d.status, 0, d.stderr);
    assert.deepEqual(d.json.manifest, ["step 'outline' changed: params.temperature 1 → 0.7"]);
    assert.deepEqual(d.json.removed, [{ cause: "genre 'noir' removed", count: 3, ids: d.json.removed[0].ids }]);
    assert.equal(d.json.changed[0].cause, "step 'outline' changed: params.temperature 1 → 0.7");
    assert.equal(d.json.changed[0].count, 6);
    assert.ok(d.json.outputs.every((o: { changed: boolean }) => o.changed));
    const human = await sb(repo, ["diff"]);
    assert.match(human.stdout, /HEAD → the working lock/);
    assert.match(human.stdout, /3 samples removed:\n +3 +genre 'noir' removed/);
    git(repo, "checkout", "-q", "--", "dataset.yaml");
    assert.equal((await sb(repo, ["build"])).status, 0);
    assert.match((await sb(repo, ["diff"])).stdout, /no change/);
  });

  test("verify --drift names the answers given by another snapshot than the endpoint serves now", async () => {
    const repo = join(root.dir, "repo");
    const same = await sb(repo, ["verify", "--drift", "--json"]);
    assert.equal(same.status, 0, same.stderr);
    assert.deepEqual(same.json.drift[0].drifted, []);
    server.setSnapshot({ suffix: "-2026-11-30", fingerprint: "fp_new" });
    try {
      const later = await sb(repo, ["verify", "--drift", "--json"]);
      assert.equal(later.status, 0, later.stderr);
      assert.equal(later.json.drift[0].drifted.length, 9);
      assert.deepEqual(later.json.drift[0].now, { model: "gpt-4o-mini-2026-11-30", fingerprint: "fp_new" });
      assert.match(later.stderr, /serves gpt-4o-mini-2026-11-30 \(fp_new\) now; 9 answers came from another snapshot/);
    } finally {
      server.setSnapshot({});
    }
  });

  test("migrate --from-key 1 carries a 0.1 cache over: the next build requests nothing", async () => {
    await initHashing();
    const repo = join(root.dir, "repo");
    // Make this a cache as synthbuild 0.1 left it: every answer under its key-version-1 key.
    const cache = new Cache(join(repo, "cache"));
    const keys = await storedKeys(join(repo, "cache"));
    assert.ok(keys.length > 0);
    for (const key of keys) {
      const e = (await cache.get(key))!;
      const old = requestKeyV1(e.request);
      await root.write({ [`repo/cache/objects/${old.slice(0, 2)}/${old}.json`]: serializeEntry({ ...e, key: old }) });
    }
    cache.close();
    await rm(join(repo, "cache", "packs"), { recursive: true, force: true });
    await rm(join(repo, "cache", "state"), { recursive: true, force: true });
    await rm(join(root.dir, "remote"), { recursive: true, force: true });
    server.reset();
    const plan = await sb(repo, ["plan", "--json"]);
    assert.equal(plan.json.requests, 9, "without the migration, every answer would be paid again");
    const m = await sb(repo, ["migrate", "--from-key", "1", "--json"]);
    assert.equal(m.status, 0, m.stderr);
    assert.deepEqual(m.json, { migrated: 9, current: 0, missing: 0 });
    const b = await sb(repo, ["build", "--json"]);
    assert.equal(b.status, 0, b.stderr);
    assert.equal(b.json.requests, 0);
    assert.equal(server.requests.length, 0);
    assert.equal((await sb(repo, ["migrate", "--from-key", "2"])).status, 2);
  });
});
