import { isPair, isScalar, isSeq, parse as parseScalar, Scalar, visit } from "yaml";
import type { Diagnostic } from "../errors.js";
import type { YamlSource } from "./source.js";

const WHOLE = /^\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\}$/;
// The last branch is a `${` that none of the others took: unterminated, or not a variable name.
const REF = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$\{/g;

/**
 * Replace `${VAR}` and `${VAR:-default}` in setting scalars (see interpolated()), in place, before validation, so
 * that interpolated values are validated like written ones. `$$` is a literal `$`. An unset
 * variable with no default is an error at the scalar that names it.
 */
export function interpolateEnv(src: YamlSource, env: NodeJS.ProcessEnv, looked: Set<string> = new Set()): Diagnostic[] {
  const errors: Diagnostic[] = [];
  visit(src.doc, {
    Scalar(_key, node, path) {
      if (typeof node.value !== "string" || !node.value.includes("$")) return;
      if (!interpolated(keyPathOf([...path, node]))) return;
      const raw = node.value;
      let missing: string | undefined;
      let malformed: string | undefined;
      node.value = raw.replace(REF, (whole, name: string | undefined, fallback: string | undefined, at: number) => {
        if (whole === "$$") return "$";
        if (name === undefined) {
          malformed ??= raw.slice(at, at + 24);
          return whole;
        }
        looked.add(name!);
        const v = env[name!];
        // Shell semantics: ${VAR:-default} also replaces an empty value; ${VAR} keeps it.
        if (v !== undefined && (fallback === undefined || v !== "")) return v;
        if (fallback !== undefined) return fallback;
        missing ??= name;
        return whole;
      });
      // An unquoted `temperature: ${TEMP:-1}` means the number, as if it had been written.
      if (!missing && node.type === Scalar.PLAIN && WHOLE.test(raw)) {
        const typed: unknown = parseScalar(String(node.value));
        if (typeof typed === "number" || typeof typed === "boolean") node.value = typed;
      }
      if (malformed) {
        errors.push(
          src.atOffset(
            sourceOffset(src, node, malformed),
            keyPathOf([...path, node]),
            `'${malformed}' is not a variable reference: \${ starts one, and it needs a name and a closing }`,
            "write ${NAME} or ${NAME:-default}; for a literal $, write $$",
          ),
        );
      } else if (missing) {
        const offset = node.range?.[0] ?? 0;
        errors.push(
          src.atOffset(
            offset,
            keyPathOf([...path, node]),
            `environment variable ${missing} is not set`,
            `export ${missing}=… or write \${${missing}:-default}`,
          ),
        );
      }
    },
  });
  return errors;
}

/**
 * Where ${VAR} is read from the environment: settings (the model, the remote cache, paths of
 * outputs, of dimension files and tables and of shared data folders). Not in dimension values or templates:
 * those are the dataset's data, and a value from the environment would make the dataset differ
 * from machine to machine, or carry a secret into prompts, the cache and dist/.
 */
function interpolated(path: (string | number)[]): boolean {
  const [top, , kind, sub] = path;
  const last = path[path.length - 1];
  if (top === "model" || top === "shared_data" || top === "cache") return true;
  if (top === "steps") return kind === "generate" && sub === "model";
  if (top === "output") return last === "path";
  if (top === "dimensions") return path.length === 3 && (last === "file" || last === "glob" || last === "rows");
  return false;
}

/** Where `text` (from the scalar's value) starts in the file; the scalar's start if its source spells it otherwise. */
function sourceOffset(src: YamlSource, node: Scalar, text: string): number {
  const [start, end] = node.range ?? [0, 0];
  const i = src.text.slice(start, end).indexOf(text);
  return i >= 0 ? start + i : start;
}

/** Turn the visitor's chain of ancestors into a key path like `model.base_url`. */
function keyPathOf(chain: readonly unknown[]): (string | number)[] {
  const out: (string | number)[] = [];
  for (let i = 0; i < chain.length; i++) {
    const n = chain[i];
    if (isPair(n) && isScalar(n.key)) out.push(String(n.key.value));
    else if (isSeq(n)) {
      const idx = n.items.indexOf(chain[i + 1] as never);
      if (idx >= 0) out.push(idx);
    }
  }
  return out;
}
