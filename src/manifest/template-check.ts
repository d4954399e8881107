import { isScalar, Scalar } from "yaml";
import type { Diagnostic } from "../errors.js";
import { type CompiledTemplate, compileTemplate, renderTemplate, TemplateSyntaxError } from "../template/engine.js";
import { suggestion } from "../util/did-you-mean.js";
import { formatPath, type KeyPath, type YamlSource } from "./source.js";

/** What a template at one place in the manifest may read. */
export interface Scope {
  /** Names readable here. */
  readonly names: ReadonlySet<string>;
  /** Names that exist but are not readable yet (later steps), with why. */
  readonly later: ReadonlyMap<string, string>;
}

/**
 * Compile a template found at `path` and check every name it reads. Errors point into the
 * template text itself where the YAML scalar lets us map the offset.
 */
export function checkTemplate(src: YamlSource, path: KeyPath, source: string, scope: Scope, errors: Diagnostic[]): CompiledTemplate | undefined {
  let t: CompiledTemplate;
  try {
    const d = src.at(path, "");
    t = compileTemplate(source, `${d.file}:${d.line}:${d.col} ${d.path}`);
  } catch (err) {
    if (!(err instanceof TemplateSyntaxError)) throw err;
    errors.push(
      at(src, path, err.line, err.col, `template syntax: ${err.message}`, "Liquid syntax: {{ name }}, {{ name | upcase }}, {% if name %}...{% endif %}"),
    );
    return undefined;
  }
  let ok = true;
  for (const name of t.reads) {
    if (scope.names.has(name)) continue;
    ok = false;
    const why = scope.later.get(name);
    if (why) errors.push(atName(src, path, source, name, `'${name}' ${why}`, "a step can only read dimensions, nonce, index, id and the steps before it"));
    else
      errors.push(
        atName(src, path, source, name, `unknown variable '${name}'`, suggestion(name, scope.names) ?? `readable here: ${[...scope.names].sort().join(", ")}`),
      );
  }
  if (!ok) return undefined;
  // Every value a template sees is text (index is a number), so one render with stand-in text
  // finds what only rendering can: a filter given the wrong arguments, a property of a string.
  const probe: Record<string, unknown> = {};
  for (const name of scope.names) probe[name] = name === "index" ? 0 : "x";
  try {
    renderTemplate({ ...t, where: undefined }, probe);
  } catch (err) {
    const cause = (err as { cause?: { token?: { getPosition?: () => [number, number] } } }).cause;
    const [line, col] = cause?.token?.getPosition?.() ?? [1, 1];
    errors.push(
      at(
        src,
        path,
        line,
        col,
        (err as Error).message.replace(/^template: /, "").replace(/, line:\d+, col:\d+$/, ""),
        "check the filter's arguments (e.g. append: 'text') and that every property read exists",
      ),
    );
    return undefined;
  }
  return t;
}

/**
 * Point at the name where a tag reads it. Searching the scalar's raw source text (not its parsed
 * value) keeps the column right in folded, multi-line and escaped scalars.
 */
function atName(src: YamlSource, path: KeyPath, source: string, name: string, message: string, hint: string): Diagnostic {
  const node = src.nodeAt(path);
  const esc = name.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&");
  const inTag = new RegExp(`\\{[{%][^}]*?(?<![\\w.-])${esc}(?![\\w-])`);
  if (isScalar(node) && node.range) {
    const raw = src.text.slice(node.range[0], node.range[1]);
    const m = inTag.exec(raw);
    if (m) return src.atOffset(node.range[0] + m.index + m[0].length - name.length, path, message, hint);
  }
  const m = inTag.exec(source);
  if (!m) return at(src, path, 1, 1, message, hint);
  const before = source.slice(0, m.index + m[0].length - name.length).split("\n");
  return at(src, path, before.length, before[before.length - 1]!.length + 1, message, hint);
}

/** Map a line/col inside a template scalar to the manifest file. */
function at(src: YamlSource, path: KeyPath, tLine: number, tCol: number, message: string, hint?: string): Diagnostic {
  const node = src.nodeAt(path);
  if (!isScalar(node) || !node.range) return src.at(path, message, hint);
  const start = src.locate(path);
  const block = node.type === Scalar.BLOCK_LITERAL || node.type === Scalar.BLOCK_FOLDED;
  if (block) {
    const firstLine = start.line + 1;
    const line = firstLine + tLine - 1;
    const indent = (src.lines[line - 1] ?? "").match(/^ */)![0].length;
    return src.diagnostic(line, indent + tCol, formatPath(path), message, hint);
  }
  const quoted = node.type === Scalar.QUOTE_DOUBLE || node.type === Scalar.QUOTE_SINGLE;
  if (tLine === 1) return src.diagnostic(start.line, start.col + tCol - 1 + (quoted ? 1 : 0), formatPath(path), message, hint);
  return src.diagnostic(start.line, start.col, formatPath(path), `${message} (line ${tLine} of the template)`, hint);
}
