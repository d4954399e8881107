import { isScalar, Scalar } from "yaml";
import type { Diagnostic } from "../errors.js";
import { suggestion } from "../util/did-you-mean.js";
import { compileTemplate, TemplateSyntaxError, type CompiledTemplate } from "../template/engine.js";
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
    t = compileTemplate(source);
  } catch (err) {
    if (!(err instanceof TemplateSyntaxError)) throw err;
    errors.push(at(src, path, err.line, err.col, `template syntax: ${err.message}`, "Liquid syntax: {{ name }}, {{ name | upcase }}, {% if name %}...{% endif %}"));
    return undefined;
  }
  let ok = true;
  for (const name of t.reads) {
    if (scope.names.has(name)) continue;
    ok = false;
    const [line, col] = findName(source, name);
    const why = scope.later.get(name);
    if (why) errors.push(at(src, path, line, col, `'${name}' ${why}`, "a step can only read dimensions, nonce, index, id and the steps before it"));
    else errors.push(at(src, path, line, col, `unknown variable '${name}'`, suggestion(name, scope.names) ?? `readable here: ${[...scope.names].sort().join(", ")}`));
  }
  return ok ? t : undefined;
}

/** 1-based line/col of the first `{{ name` / `{% ... name` use in a template. */
function findName(source: string, name: string): [number, number] {
  const re = new RegExp(`(?<![\\w.-])${name.replace(/[.*+?^${}()|[\]\\-]/g, "\\$&")}(?![\\w-])`);
  const idx = source.search(re);
  if (idx < 0) return [1, 1];
  const before = source.slice(0, idx).split("\n");
  return [before.length, before[before.length - 1]!.length + 1];
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
