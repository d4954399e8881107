// Bundles the CLI into lib/bundle/ (run by `npm run build`, after tsc).
//
// Why: Node 20 has no module compile cache, and loading ~400 ES modules one by one (zod alone
// pulls in every locale it ships) cost about 90 ms of each command's start-up; a build against a
// real endpoint waits for it before its first request. One bundle with the dependencies in it
// starts in about half the time. The library API (`import { build } from "synthbuild"`) stays the
// per-module output in lib/, so it shares dependencies with its caller.
//
// What is loaded only when needed (the openai SDK, ajv, gpt-tokenizer, cli-progress, chalk,
// fast-glob) stays in split chunks behind the same dynamic imports. A user's `run` module is
// imported by a computed URL, which esbuild leaves alone, in a worker thread whose entry point
// (lib/bundle/module-worker.js) is bundled on its own.
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

// fileURLToPath, not .pathname: a checkout under a path with spaces (or on Windows) must build.
const outdir = fileURLToPath(new URL("../lib/bundle/", import.meta.url));
rmSync(outdir, { recursive: true, force: true });
await build({
  // The thread run modules live in is started from a file beside the chunk that starts it.
  entryPoints: {
    cli: fileURLToPath(new URL("../lib/cli/main.js", import.meta.url)),
    "module-worker": fileURLToPath(new URL("../lib/manifest/module-worker.js", import.meta.url)),
  },
  outdir,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  packages: "bundle",
  // CommonJS dependencies call require(); an ES module bundle has none of its own.
  banner: { js: 'import { createRequire as __synthbuildRequire } from "node:module"; const require = __synthbuildRequire(import.meta.url);' },
  // Stack traces of bugs (exit 70) map back to src/ under NODE_OPTIONS=--enable-source-maps.
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
});
