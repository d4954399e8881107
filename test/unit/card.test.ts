/**
 * The dataset card's front matter has the shape Hugging Face documents for dataset cards
 * (hub-docs datasetcard.md and "Manual Configuration"): `configs` is a list of
 * `{ config_name, data_files: [{ split, path }] }` (with `default: true` on one config when
 * there are several), `size_categories` takes the Hub's buckets, `license: other` is the
 * placeholder the Hub accepts, and `pretty_name`, `task_categories` and `tags` are lists or
 * strings as the spec says.
 */
import assert from "node:assert/strict";
import { before, describe, test } from "node:test";
import { parse } from "yaml";
import type { Lock } from "../../src/lock/lockfile.js";
import type { Manifest, Output } from "../../src/manifest/types.js";
import { cardTarget, ownership, renderCard } from "../../src/output/card.js";
import { sizeCategory } from "../../src/output/card-text.js";
import { initHashing } from "../../src/util/hash.js";

const HF_SIZES = ["n<1K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "10M<n<100M", "100M<n<1B", "1B<n<10B", "10B<n<100B", "100B<n<1T", "n>1T"];

const output = (path: string, split?: [string, number][], format: Output["format"] = "openai-chat"): Output =>
  ({ path, absPath: `/p/${path}`, format, split, card: format !== "files" }) as Output;

const manifest = (outputs: Output[], license?: string): Manifest =>
  ({
    file: "/p/dataset.yaml",
    dir: "/p",
    name: "plots",
    seed: 7,
    outputs,
    steps: [{ id: "story" }],
    ...(license !== undefined && { card: { license } }),
  }) as unknown as Manifest;

const lock = (outputs: [string, number][]): Lock => ({
  header: {
    lockfile: 2,
    name: "plots",
    seed: 7,
    combine: { mode: "product", repeat: 1 },
    versions: { key: 2, render: 1 },
    samples: 3,
    kept: 3,
    dropped: 0,
    failed: 0,
    pending: 0,
    steps: {
      story: {
        def: "d",
        kind: "generate",
        model: "gpt-4o-mini",
        provider: "openai",
        endpoint: "https://user:pw@api.example.com/v1?key=k",
        params: { temperature: 1 },
      },
    },
  },
  outputs: outputs.map(([path, rows]) => ({ path, rows, hash: "h", def: "d" })),
  samples: [{ id: "a", values: {}, repeat: 0, status: "kept", steps: { story: { r: "r", key: "k", model: "gpt-4o-mini-2024-07-18", fp: "fp_1" } } }],
});

function frontMatter(card: string): Record<string, unknown> {
  const m = card.match(/^---\n([\s\S]*?)\n---\n/);
  assert.ok(m, "no YAML front matter at the top");
  return parse(m[1]!) as Record<string, unknown>;
}

describe("the dataset card", () => {
  before(() => initHashing());

  test("front matter has the fields and shapes Hugging Face documents", () => {
    const m = manifest([
      output("dist/plots.jsonl", [
        ["train", 0.9],
        ["validation", 0.1],
      ]),
    ]);
    const card = renderCard(
      m,
      cardTarget(m)!,
      lock([
        ["dist/plots.train.jsonl", 900],
        ["dist/plots.validation.jsonl", 100],
      ]),
      "abc",
    );
    const fm = frontMatter(card);
    assert.deepEqual(Object.keys(fm).sort(), ["configs", "license", "pretty_name", "size_categories", "tags", "task_categories"]);
    assert.equal(fm.pretty_name, "plots");
    assert.equal(fm.license, "other");
    assert.deepEqual(fm.task_categories, ["text-generation"]);
    assert.ok(Array.isArray(fm.tags) && (fm.tags as string[]).includes("synthetic"));
    assert.deepEqual(fm.size_categories, ["1K<n<10K"]);
    assert.deepEqual(fm.configs, [
      {
        config_name: "default",
        data_files: [
          { split: "train", path: "plots.train.jsonl" },
          { split: "validation", path: "plots.validation.jsonl" },
        ],
      },
    ]);
    assert.match(card, /license: other # placeholder: set/);
  });

  test("several outputs are several configs named after their files, one of them the default; paths relative to the card", () => {
    const m = manifest([output("dist/chat/a.jsonl"), output("dist/pc/b.jsonl", undefined, "prompt-completion"), output("dist/f", undefined, "files")]);
    const t = cardTarget(m)!;
    assert.equal(t.path, "dist/README.md");
    const fm = frontMatter(
      renderCard(
        m,
        t,
        lock([
          ["dist/chat/a.jsonl", 5],
          ["dist/pc/b.jsonl", 6],
        ]),
        "abc",
      ),
    );
    assert.deepEqual(fm.configs, [
      { config_name: "a", default: true, data_files: [{ split: "train", path: "chat/a.jsonl" }] },
      { config_name: "b", data_files: [{ split: "train", path: "pc/b.jsonl" }] },
    ]);
  });

  test("size_categories are the Hub's buckets, at their edges", () => {
    for (const [rows, want] of [
      [0, "n<1K"],
      [999, "n<1K"],
      [1000, "1K<n<10K"],
      [99_999, "10K<n<100K"],
      [100_000, "100K<n<1M"],
      [5_000_000, "1M<n<10M"],
    ] as const) {
      assert.equal(sizeCategory(rows), want);
      assert.ok(HF_SIZES.includes(sizeCategory(rows)));
    }
  });

  test("the body names the model snapshot and fingerprint, and the endpoint's host only", () => {
    const m = manifest([output("out.jsonl")]);
    const card = renderCard(m, cardTarget(m)!, lock([["out.jsonl", 3]]), "abc");
    assert.equal(cardTarget(m)!.path, "README.md");
    assert.match(card, /model `gpt-4o-mini` at api\.example\.com; params temperature 1; answered by `gpt-4o-mini-2024-07-18`; fingerprints `fp_1`/);
    assert.doesNotMatch(card, /pw|key=k/);
    assert.match(card, /`dataset\.lock` hash `abc`/);
  });

  test("no JSONL output, or card: false on every one, means no card", () => {
    assert.equal(cardTarget(manifest([output("dist/f", undefined, "files")])), undefined);
    assert.equal(cardTarget(manifest([{ ...output("dist/x.jsonl"), card: false }])), undefined);
  });

  test("ownership: ours while its checksum holds, edited once changed, theirs without the marker", () => {
    const m = manifest([output("dist/plots.jsonl")]);
    const card = renderCard(m, cardTarget(m)!, lock([["dist/plots.jsonl", 3]]), "abc");
    assert.equal(ownership(card), "ours");
    assert.equal(ownership(card.replace("plots", "plotz")), "edited");
    assert.equal(ownership(card.replace(/^---\n.*\n/, "---\n")), "theirs");
    assert.equal(ownership("# My dataset\n"), "theirs");
  });

  test("card.license is the front matter's license, quoted, with no placeholder, and the License section names it", () => {
    for (const license of ["mit", "apache-2.0", "cc-by-nc-sa-4.0", "openrail++", "0bsd", "1.0", "other"]) {
      const m = manifest([output("dist/plots.jsonl")], license);
      const card = renderCard(m, cardTarget(m)!, lock([["dist/plots.jsonl", 3]]), "abc");
      // "1.0" plain would be a YAML number: quoted, every id reads back as the string it is.
      assert.equal(frontMatter(card).license, license);
      assert.doesNotMatch(card, /placeholder/);
      assert.match(card, new RegExp(`## License\n\n\`${license.replace(/[.+]/g, "\\$&")}\`.*\`card.license\``));
      assert.equal(ownership(card), "ours");
    }
    const unset = renderCard(
      manifest([output("dist/plots.jsonl")]),
      cardTarget(manifest([output("dist/plots.jsonl")]))!,
      lock([["dist/plots.jsonl", 3]]),
      "abc",
    );
    assert.match(unset, /## License\n\nNot set yet: set it in `dataset\.yaml` with `card: \{ license: \.\.\. \}`/);
  });
});
