import assert from "node:assert/strict";
import { mkdir, mkdtemp, realpath, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { globFiles } from "../../src/manifest/glob-files.js";
import { decodeUtf8 } from "../../src/util/utf8.js";

test("decodeUtf8 keeps UTF-8 text as it is and points at the first byte that is not", () => {
  assert.deepEqual(decodeUtf8(Buffer.from("a\nKyōto \uFFFD ok\n")), { text: "a\nKyōto \uFFFD ok\n" });
  // A U+FFFD written in the file is text; the Latin-1 é after it is the error.
  const bad = Buffer.concat([Buffer.from("one\ntwo \uFFFD 😀 "), Buffer.from([0xe9]), Buffer.from("\n")]);
  assert.deepEqual(decodeUtf8(bad), { notUtf8: { line: 2, col: 10, byte: 0xe9 } });
  assert.deepEqual(decodeUtf8(Buffer.from([0x61, 0xff])), { notUtf8: { line: 1, col: 2, byte: 0xff } });
  // An encoded surrogate half is not UTF-8 either.
  assert.deepEqual(decodeUtf8(Buffer.from([0xed, 0xa0, 0x80])), { notUtf8: { line: 1, col: 1, byte: 0xed } });
});

test("a glob stops at links that lead back into themselves or out of the roots, and says which", async () => {
  const dir = await realpath(await mkdtemp(join(tmpdir(), "sb-glob-")));
  try {
    await mkdir(join(dir, "p", "docs", "sub"), { recursive: true });
    await writeFile(join(dir, "p", "docs", "sub", "a.txt"), "a");
    await writeFile(join(dir, "outside.txt"), "secret");
    // Two links back up made fast-glob's walk exponential: it never ended.
    await symlink("..", join(dir, "p", "docs", "sub", "up"));
    await symlink("../..", join(dir, "p", "docs", "sub", "top"));
    await symlink(dir, join(dir, "p", "docs", "out"));
    const root = join(dir, "p");
    const r = await globFiles("docs/**/*.txt", root, [root]);
    assert.deepEqual(r.files, ["docs/sub/a.txt"]);
    assert.deepEqual(r.loops, [
      { link: join(root, "docs/sub/top"), target: root },
      { link: join(root, "docs/sub/up"), target: join(root, "docs") },
    ]);
    assert.deepEqual(r.outside, [join(root, "docs/out")]);
    // Without roots (the up-to-date check's walk) the circles are still cut.
    const free = await globFiles("docs/**/*.txt", root);
    assert.ok(free.loops.length >= 2 && free.files.includes("docs/sub/a.txt"));
    // A link to a folder beside, inside the project, is an ordinary folder.
    await mkdir(join(root, "v2"));
    await writeFile(join(root, "v2", "b.txt"), "b");
    await symlink("v2", join(root, "current"));
    assert.deepEqual((await globFiles("current/*.txt", root, [root])).files, ["current/b.txt"]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
