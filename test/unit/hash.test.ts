import assert from "node:assert/strict";
import { before, test } from "node:test";
import { createHash64, createHash128, hash64, hash128, initHashing } from "../../src/util/hash.js";
import { prng } from "../helpers/rng.js";

before(() => initHashing());

// The streaming hashes digest a dist/ file and the lock a piece at a time; what they give must be
// the hash of the whole text, however it is cut, whether the pieces are texts or their bytes.
test("a text hashed in pieces (texts or bytes, cut anywhere, inside characters too) hashes as the whole", () => {
  const rand = prng(7);
  const alphabet = ["a", "é", "✓", "𝄞", "\n", "Kyōto "];
  for (let round = 0; round < 50; round++) {
    const text = Array.from({ length: 1 + Math.floor(rand() * 5000) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join("");
    const bytes = Buffer.from(text, "utf8");
    const h128 = createHash128();
    const h64 = createHash64();
    for (let at = 0; at < bytes.length; ) {
      const end = Math.min(bytes.length, at + 1 + Math.floor(rand() * 700));
      const piece = bytes.subarray(at, end);
      // A piece that is whole characters may go as text; one cut inside a character goes as bytes.
      const asText = rand() < 0.5 && Buffer.from(piece.toString("utf8"), "utf8").equals(piece) ? piece.toString("utf8") : piece;
      h128.update(asText);
      h64.update(asText);
      at = end;
    }
    assert.equal(h128.digest(), hash128(text));
    assert.equal(h64.digest(), hash64(text));
  }
});
