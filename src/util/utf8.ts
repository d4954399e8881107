import { isUtf8 } from "node:buffer";

/** The first byte that is not UTF-8: its 1-based line and column (in characters, as an editor counts). */
export interface NotUtf8 {
  readonly line: number;
  readonly col: number;
  readonly byte: number;
}

/**
 * A file's text, or where it stops being UTF-8. Decoding leniently would turn a Latin-1 'é' into
 * U+FFFD, and that replacement character would reach prompts, the cache and dist/ unnoticed.
 */
export function decodeUtf8(buf: Buffer): { text: string } | { notUtf8: NotUtf8 } {
  const text = buf.toString("utf8");
  if (isUtf8(buf)) return { text };
  // Every U+FFFD in the lenient decoding is either written in the file (EF BF BD) or stands for
  // bytes that are not UTF-8; the first of the second kind is the place to point at.
  let bytes = 0;
  let from = 0;
  for (let i = text.indexOf("\uFFFD"); i >= 0; i = text.indexOf("\uFFFD", from)) {
    bytes += Buffer.byteLength(text.slice(from, i));
    if (buf[bytes] === 0xef && buf[bytes + 1] === 0xbf && buf[bytes + 2] === 0xbd) {
      bytes += 3;
      from = i + 1;
      continue;
    }
    const before = text.slice(0, i);
    const lineStart = before.lastIndexOf("\n") + 1;
    return { notUtf8: { line: before.split("\n").length, col: i - lineStart + 1, byte: buf[bytes]! } };
  }
  // Unreachable: lenient decoding replaces every sequence isUtf8 refuses with a U+FFFD.
  return { notUtf8: { line: 1, col: 1, byte: buf[0] ?? 0 } };
}

/** `byte 0xE9`: how a diagnostic names the offending byte. */
export function byteName(b: number): string {
  return `byte 0x${b.toString(16).toUpperCase().padStart(2, "0")}`;
}
