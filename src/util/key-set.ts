/**
 * A set of cache keys (32 hex digits: 128 bits) held as four 32-bit words each in one
 * open-addressed typed array, not as a million strings in a Set: `plan` of a million samples
 * counts its distinct requests without a million strings kept alive for the collector to walk.
 * Exact (the words are the key); anything else that is not a cache key goes to a plain Set.
 */
export class KeySet {
  private words = new Int32Array(4 * 1024);
  private used = new Uint8Array(1024);
  private count = 0;
  private readonly other = new Set<string>();

  get size(): number {
    return this.count + this.other.size;
  }

  /** Adds the key; false if it was already there. */
  add(key: string): boolean {
    const w0 = key.length === 32 ? word(key, 0) : -1;
    const w1 = w0 >= 0 ? word(key, 8) : -1;
    const w2 = w1 >= 0 ? word(key, 16) : -1;
    const w3 = w2 >= 0 ? word(key, 24) : -1;
    if (w3 < 0) {
      if (this.other.has(key)) return false;
      this.other.add(key);
      return true;
    }
    if (!this.insert(w0 | 0, w1 | 0, w2 | 0, w3 | 0)) return false;
    if (++this.count * 2 > this.used.length) this.grow();
    return true;
  }

  private insert(w0: number, w1: number, w2: number, w3: number): boolean {
    const mask = this.used.length - 1;
    // The words are already a hash's: any one of them spreads the slots.
    for (let s = (w0 ^ w3) & mask; ; s = (s + 1) & mask) {
      const at = 4 * s;
      if (!this.used[s]) {
        this.used[s] = 1;
        this.words[at] = w0;
        this.words[at + 1] = w1;
        this.words[at + 2] = w2;
        this.words[at + 3] = w3;
        return true;
      }
      if (this.words[at] === w0 && this.words[at + 1] === w1 && this.words[at + 2] === w2 && this.words[at + 3] === w3) return false;
    }
  }

  private grow(): void {
    const { words, used } = this;
    this.words = new Int32Array(words.length * 2);
    this.used = new Uint8Array(used.length * 2);
    for (let s = 0; s < used.length; s++) if (used[s]) this.insert(words[4 * s]!, words[4 * s + 1]!, words[4 * s + 2]!, words[4 * s + 3]!);
  }
}

/** Eight lowercase hex digits from `at` as an unsigned 32-bit number, or -1 if they are not that. */
function word(key: string, at: number): number {
  let w = 0;
  for (let i = at; i < at + 8; i++) {
    const c = key.charCodeAt(i);
    const v = c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : -1;
    if (v < 0) return -1;
    w = w * 16 + v;
  }
  return w;
}
