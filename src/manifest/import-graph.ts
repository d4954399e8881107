import { readFile } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { init, parse } from "es-module-lexer";
import { moduleResolve } from "import-meta-resolve";

/**
 * Everything a run module's behaviour depends on that a file system holds: the module, every
 * local file it imports (transitively, cycles and all), and the name and version of each package
 * it imports. A helper edited, removed or added, or a package upgraded, changes the graph.
 *
 * Imports are found by es-module-lexer (static `import`/`export … from`, and `import("literal")`),
 * resolved exactly as Node resolves them (import-meta-resolve: `exports`, `imports`, symlinks).
 * A file that resolves into `node_modules` is a package's: it is identified by its package's
 * name and version, not followed. A workspace package linked into `node_modules` resolves to
 * its real path outside it, so it is followed like any local file. Not seen: `require()`,
 * `import(variable)`, and files a module reads at run time.
 */
export interface ImportGraph {
  /** Absolute path → its text: the entry module first, then every local file it reaches. */
  readonly files: Map<string, string>;
  /** Each imported package's package.json (absolute path) → its name@version and text. */
  readonly packages: Map<string, { id: string; text: string }>;
  /** Files whose imports the lexer could not read: a syntax error, as a rule. */
  readonly unlexed: string[];
}

/** A broken import, said as "file:line:col what" relative to the manifest's folder. */
export class ImportGraphError extends Error {}

const LEXED = new Set([".js", ".mjs"]);

export async function importGraph(entry: string, dir: string): Promise<ImportGraph> {
  await init;
  const files = new Map<string, string>();
  const packages: ImportGraph["packages"] = new Map();
  const unlexed: string[] = [];
  const todo = [entry];
  for (let file = todo.pop(); file !== undefined; file = todo.pop()) {
    if (files.has(file)) continue; // a cycle, or a diamond: each file is read once
    let text: string;
    try {
      text = await readFile(file, "utf8");
    } catch (err) {
      throw new ImportGraphError(`${show(dir, file)} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
    }
    files.set(file, text);
    // JSON, WebAssembly and CommonJS files import nothing the lexer can see: their text is enough.
    if (!LEXED.has(extname(file))) continue;
    let imports: ReturnType<typeof parse>[0];
    try {
      [imports] = parse(text, file);
    } catch {
      // Node's own parse, when the module is loaded, says what is wrong far better; if Node can
      // load what the lexer could not read, the graph would be incomplete (see run-modules.ts).
      unlexed.push(show(dir, file));
      continue;
    }
    const parent = pathToFileURL(file);
    for (const imp of imports) {
      // import.meta, import(variable), and import(`./${x}.js`) name no one file.
      if (imp.type === "import-meta" || imp.specifier === undefined || (imp.type === "dynamic" && imp.glob)) continue;
      const spec = imp.specifier;
      let url: URL;
      try {
        url = moduleResolve(spec, parent);
      } catch (err) {
        throw new ImportGraphError(`${show(dir, file)}${position(text, imp.importStart)} imports '${spec}', ${why(err as NodeJS.ErrnoException, spec)}`);
      }
      if (url.protocol !== "file:") continue; // node: builtins (Node's version is the tool's), data: URLs (in the text)
      const target = fileURLToPath(url);
      const pkg = packageFolder(target);
      if (pkg === undefined) todo.push(target);
      else if (!packages.has(join(pkg, "package.json"))) packages.set(join(pkg, "package.json"), await packageId(pkg, dir));
    }
  }
  return { files, packages, unlexed };
}

function why(err: NodeJS.ErrnoException, spec: string): string {
  const bare = !/^(\.{0,2}\/|file:|#)/.test(spec);
  if (err.code === "ERR_MODULE_NOT_FOUND") return bare ? "a package that is not installed" : "which does not exist";
  if (err.code === "ERR_UNSUPPORTED_DIR_IMPORT") return "a folder (an ES module imports a file, by its full name)";
  return err.message.split("\n")[0]!.replace(/ imported from .*$/, "");
}

/** The package folder a resolved file belongs to: the one after the last node_modules. */
function packageFolder(file: string): string | undefined {
  const parts = file.split(sep);
  const at = parts.lastIndexOf("node_modules");
  if (at < 0 || at + 1 >= parts.length - 1) return undefined;
  const scoped = parts[at + 1]!.startsWith("@");
  return parts.slice(0, at + (scoped ? 3 : 2)).join(sep);
}

async function packageId(folder: string, dir: string): Promise<{ id: string; text: string }> {
  try {
    const text = await readFile(join(folder, "package.json"), "utf8");
    const pkg = JSON.parse(text) as { name?: unknown; version?: unknown };
    return { id: `${String(pkg.name)}@${String(pkg.version)}`, text };
  } catch {
    throw new ImportGraphError(`${show(dir, folder)} has no readable package.json, so its version is unknown`);
  }
}

/** Paths as the user sees them: relative to the manifest's folder, with forward slashes. */
export function show(dir: string, file: string): string {
  return relative(dir, file).split(sep).join("/") || file;
}

function position(text: string, offset: number): string {
  const before = text.slice(0, Math.max(0, offset));
  const line = before.split("\n").length;
  return `:${line}:${offset - before.lastIndexOf("\n")}`;
}
