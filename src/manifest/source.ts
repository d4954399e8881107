import { type Document, isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument, visit } from "yaml";
import type { Diagnostic } from "../errors.js";

export type KeyPath = ReadonlyArray<string | number>;

/**
 * A parsed YAML file that still knows where every value came from, so that any later stage can
 * point at `file:line:col` with a code frame.
 */
export class YamlSource {
  readonly lines: string[];
  constructor(
    readonly file: string,
    readonly text: string,
    readonly doc: Document.Parsed,
    private readonly counter: LineCounter,
  ) {
    this.lines = text.split(/\r?\n/);
  }

  static parse(file: string, text: string): YamlSource {
    const counter = new LineCounter();
    const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
    return new YamlSource(file, text, doc, counter);
  }

  /** Syntax errors, already positioned. */
  syntaxDiagnostics(): Diagnostic[] {
    const seen = new Set<string>();
    return this.doc.errors.flatMap((e) => {
      const offset = e.pos[0];
      const { line, col } = this.counter.linePos(offset);
      const overIndented = this.overIndentedAfter(line, e.code);
      if (overIndented) {
        const key = `${overIndented.line}:${overIndented.col}`;
        if (seen.has(key)) return [];
        seen.add(key);
        return [
          this.diagnostic(
            overIndented.line,
            overIndented.col,
            "",
            `'${overIndented.name}:' is indented more than the key above it`,
            "keys of one mapping line up: indent them by the same number of spaces",
          ),
        ];
      }
      const message = e.code === "MULTIPLE_DOCS" ? "a manifest is one YAML document, but this file has several" : e.message.split("\n")[0]!;
      return [this.diagnostic(line, col, "", message, hintForYamlError(e.code, message))];
    });
  }

  /**
   * yaml reports `provider: openai` followed by a more-indented `name: x` as an implicit-key
   * problem on the first line; what the author did is indent the second line too far.
   */
  private overIndentedAfter(line: number, code: string): { line: number; col: number; name: string } | undefined {
    if (code !== "BLOCK_AS_IMPLICIT_KEY" && code !== "MULTILINE_IMPLICIT_KEY" && code !== "BAD_INDENT") return undefined;
    const here = /^(\s*)[^\s#][^:]*:\s*\S/.exec(this.lines[line - 1] ?? "");
    const next = /^(\s*)([\w$.-]+):/.exec(this.lines[line] ?? "");
    if (!here || !next || next[1]!.length <= here[1]!.length) return undefined;
    return { line: line + 1, col: next[1]!.length + 1, name: next[2]! };
  }

  /**
   * The position of the deepest node along `path` that exists. With `key`, point at the mapping key
   * itself (for "unknown key" errors) rather than its value.
   */
  locate(path: KeyPath, opts: { key?: boolean } = {}): { line: number; col: number } {
    let node: unknown = this.doc.contents;
    let pos: number | undefined = rangeStart(node);
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === String(seg));
        if (!pair) break;
        const last = seg === path[path.length - 1] && opts.key;
        node = pair.value;
        pos = (last ? rangeStart(pair.key) : (rangeStart(pair.value) ?? rangeStart(pair.key))) ?? pos;
        if (last) break;
      } else if (isSeq(node) && typeof seg === "number") {
        const item = node.items[seg];
        if (item === undefined) break;
        node = item;
        pos = rangeStart(item) ?? pos;
      } else break;
    }
    return this.counter.linePos(pos ?? 0);
  }

  /** Anchors expanded past yaml's limit (an "alias bomb"): point at the first alias. */
  aliasDiagnostic(message: string): Diagnostic {
    let offset = 0;
    visit(this.doc, {
      Alias(_k, node) {
        offset = node.range?.[0] ?? 0;
        return visit.BREAK;
      },
    });
    const { line, col } = this.counter.linePos(offset);
    return this.diagnostic(
      line,
      col,
      "",
      `aliases expand to too much data (${message})`,
      "a manifest needs few anchors and aliases; write the values out or use fewer nested aliases",
    );
  }

  /** The node at a path, if it exists (used to map positions inside template strings). */
  nodeAt(path: KeyPath): Node | undefined {
    const n = this.doc.getIn(path as (string | number)[], true);
    return n as Node | undefined;
  }

  at(path: KeyPath, message: string, hint?: string, opts: { key?: boolean } = {}): Diagnostic {
    const { line, col } = this.locate(path, opts);
    return this.diagnostic(line, col, formatPath(path), message, hint);
  }

  atOffset(offset: number, path: KeyPath, message: string, hint?: string): Diagnostic {
    const { line, col } = this.counter.linePos(offset);
    return this.diagnostic(line, col, formatPath(path), message, hint);
  }

  diagnostic(line: number, col: number, path: string, message: string, hint?: string): Diagnostic {
    return { file: this.file, line, col, path, message, hint, frame: this.frame(line, col) };
  }

  private frame(line: number, col: number): string | undefined {
    const src = this.lines[line - 1];
    if (src === undefined) return undefined;
    const gutter = String(line).length;
    const out: string[] = [];
    const prev = this.lines[line - 2];
    if (prev !== undefined && prev.trim() !== "") out.push(`  ${String(line - 1).padStart(gutter)} | ${prev}`);
    out.push(`> ${String(line).padStart(gutter)} | ${src}`);
    out.push(`  ${" ".repeat(gutter)} | ${" ".repeat(Math.max(0, col - 1))}^`);
    return out.join("\n");
  }
}

function rangeStart(node: unknown): number | undefined {
  const r = (node as { range?: [number, number, number] } | null)?.range;
  return r ? r[0] : undefined;
}

/** `steps[1].generate.prompt` — how a person reads a key path. */
export function formatPath(path: KeyPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function hintForYamlError(code: string, message: string): string | undefined {
  if (/quote/i.test(message)) return "close the quoted string with the same quote it opens with, or use a block (|) for text with quotes";
  switch (code) {
    case "MULTIPLE_DOCS":
      return "remove the `---` line and everything after it, or merge the documents";
    case "DUPLICATE_KEY":
      return "each key may appear once in a mapping; remove or rename one of them";
    case "BAD_INDENT":
    case "MISSING_CHAR":
      return "check the indentation: nested keys must be indented more than their parent, with spaces, not tabs";
    case "TAB_AS_INDENT":
      return "YAML indentation must use spaces, not tabs";
    case "BLOCK_AS_IMPLICIT_KEY":
    case "MULTILINE_IMPLICIT_KEY":
      return "a value containing ': ' or spanning lines must be quoted or written as a block (|)";
    default:
      return "quote strings that contain ':', '#', '{' or start with a special character";
  }
}
