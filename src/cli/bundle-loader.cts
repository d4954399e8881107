import { isAscii } from "node:buffer";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { Script } from "node:vm";

/**
 * How bin/synthbuild.js loads the CLI bundle (lib/bundle/cli.cjs, made by scripts/bundle-cli.js)
 * with a V8 code cache: Node 20 has no compile cache of its own (module.enableCompileCache is
 * Node 22.1+), and compiling the bundle was about a third of every command's start-up.
 *
 * The bundle is CommonJS so that it can be compiled as a vm.Script with `cachedData`: an ES module
 * can only be compiled by Node's loader, which takes no cache. Each file of the bundle (cli.cjs and
 * the large dependencies in vendor/, loaded when first required) is compiled here as Node's CJS
 * loader would, wrapped in the same function, with the cache made for it by `npm run build`
 * beside it (FILE.cache).
 *
 * A cache is used only by the Node that made it, for the exact bytes it was made from, and only if
 * it is intact (its header, below); V8 itself rejects a cache made under other V8 flags. A missing,
 * stale or rejected cache costs only the compile it would have saved, silently. Nothing is ever
 * written at run time: the package may be read-only, shared by processes running at once, and
 * used by several Node versions in turn (each would overwrite the other's cache); `npm run build`
 * makes the caches for the Node it runs on.
 */

/** What the bundle exports (lib/cli/main.ts). */
export interface CliModule {
  main(argv: string[]): Promise<number>;
}

/** A cache file's first line starts with this; the versions of Node and V8, the OS and the CPU follow. */
export const CACHE_MAGIC = "synthbuild-code-cache-1";

/** The cache file of a bundle file. */
export const cacheFileOf = (file: string): string => `${file}.cache`;

// Only this Node on this CPU: V8 checks its own version, but a Node release may carry V8 patches
// under the same version number (Node's own suffix, "-node.N", counts them), and reading bytecode
// of another build can crash the process.
const firstLine = () => `${CACHE_MAGIC} node-${process.version} v8-${process.versions.v8} ${process.platform}-${process.arch}`;

// The SHA-256 of the source and of V8's data. The source: V8 compares only its length, so a copy of
// the bundle with one digit changed would run the old code. The data: V8 does not check it in a
// release build, and a damaged cache can crash the process (not merely be rejected).
const digest = (source: Buffer, data: Buffer) => createHash("sha256").update(source).update(data).digest("hex");

/** A cache file's bytes: the header for `source` and `data`, then V8's data. */
export function cacheFile(source: Buffer, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${firstLine()}\n${digest(source, data)}\n`, "latin1"), data]);
}

/** V8's data in `cache` if it was made from `source` by this Node and is intact, else undefined. */
export function cachedDataFor(source: Buffer, cache: Buffer | undefined): Buffer | undefined {
  if (!cache) return undefined;
  const first = cache.indexOf(10);
  const second = first < 0 ? -1 : cache.indexOf(10, first + 1);
  if (second < 0 || cache.toString("latin1", 0, first) !== firstLine()) return undefined;
  const data = cache.subarray(second + 1);
  return data.length && cache.toString("latin1", first + 1, second) === digest(source, data) ? data : undefined;
}

function readIfAny(file: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch {
    return undefined;
  }
}

export interface LoadOptions {
  /** Compile without the caches (the build uses this to make them). */
  noCache?: boolean;
  /** Told of each file compiled, with its Script and source (the build makes each file's cache from them). */
  compiled?: (file: string, script: Script, source: Buffer) => void;
}

/**
 * The exports of the bundle file `file`, compiled with its code cache. Under --enable-source-maps
 * (NODE_OPTIONS) the file is required instead, because Node maps stack traces back to src/ only for
 * code its own loaders compiled; that run pays the compile.
 */
export function loadBundle(file: string | URL, opts: LoadOptions = {}): CliModule {
  const path = typeof file === "string" ? file : fileURLToPath(file);
  if (process.sourceMapsEnabled) return createRequire(path)(path) as CliModule;
  return new Loader(opts).load(path) as CliModule;
}

// Node's CommonJS wrapper, on the bundle's first line ("use strict"), so that line and column
// numbers in stack traces stay those of the file.
const WRAP_HEAD = "(function (exports, require, module, __filename, __dirname) { ";
const WRAP_TAIL = "\n})";

/**
 * A bundle file compiled as Node's CJS loader would wrap it (with V8's data for it, if any): what
 * runs, and what the build makes each cache from, so that the two compile the very same text.
 */
export function compileBundleFile(file: string, source: Buffer, cachedData?: Buffer): Script {
  // The bundle is ASCII but for the odd comment or regular expression: latin1 is exact for ASCII
  // and several times faster to decode than UTF-8.
  const text = source.toString(isAscii(source) ? "latin1" : "utf8");
  return new Script(WRAP_HEAD + text + WRAP_TAIL, { filename: file, cachedData });
}

interface Module {
  exports: unknown;
}

class Loader {
  /** One instance of each file, as require's cache would keep it (also while it is still being evaluated). */
  private readonly loaded = new Map<string, Module>();

  constructor(private readonly opts: LoadOptions) {}

  load(file: string): unknown {
    const done = this.loaded.get(file);
    if (done) return done.exports;
    const source = readFileSync(file);
    const script = compileBundleFile(file, source, this.opts.noCache ? undefined : cachedDataFor(source, readIfAny(cacheFileOf(file))));
    this.opts.compiled?.(file, script, source);
    const module: Module = { exports: {} };
    this.loaded.set(file, module);
    const nodeRequire = createRequire(file);
    const dir = dirname(file);
    // The bundle requires its vendor/ files by relative path (scripts/bundle-cli.js); everything
    // else (node: builtins, optional packages it does not bundle) is Node's.
    const require = Object.assign((id: string) => (id.startsWith("./") && id.endsWith(".cjs") ? this.load(join(dir, id)) : nodeRequire(id)), nodeRequire);
    try {
      script.runInThisContext().call(module.exports, module.exports, require, module, file, dir);
    } catch (e) {
      // As require does: a file that threw is evaluated anew if asked for again.
      this.loaded.delete(file);
      throw e;
    }
    return module.exports;
  }
}
