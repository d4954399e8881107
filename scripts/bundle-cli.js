// Bundles the CLI into lib/bundle/ (run by `npm run build`, after tsc), then makes its V8 code
// caches (scripts/code-cache.js).
//
// Why a bundle: Node 20 has no module compile cache, and loading ~400 ES modules one by one (zod
// alone pulls in every locale it ships) cost about 90 ms of each command's start-up; a build against
// a real endpoint waits for it before its first request. The library API (`import { build } from
// "synthbuild"`) stays the per-module output in lib/, so it shares dependencies with its caller.
//
// Why CommonJS: compiling the bundle was still about a third of each start-up, and only a script
// can be compiled with a code cache (vm.Script's cachedData; Node's ES module loader takes none).
// bin/synthbuild.js loads it through lib/cli/bundle-loader.cjs.
//
// What is loaded only when needed stays behind the same dynamic imports, which esbuild turns into
// functions run on first use. The large dependencies only some runs need (VENDOR) are files of their
// own in lib/bundle/vendor/, each with its own cache, so that reading and checking the start-up file
// does not pay for them. A user's `run` module is imported by a computed URL in a worker thread,
// whose entry point (lib/bundle/module-worker.js) stays an ES module bundled on its own.
import { spawnSync } from "node:child_process";
import { rmSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

/** Packages bundled apart, by size: each is needed by some commands only (see the note above). */
const VENDOR = [
  "gpt-tokenizer", // 3.3 MB: token counts (plan, builds with a tpm limit)
  "@aws-sdk/client-s3", // 1.3 MB: an s3:// remote cache
  "undici", // 1.1 MB: SYNTHBUILD_TRANSPORT=undici only
  "@pydantic/genai-prices", // 0.8 MB: list prices
  "openai", // 0.4 MB: any request
];

// fileURLToPath, not .pathname: a checkout under a path with spaces (or on Windows) must build.
const lib = fileURLToPath(new URL("../lib/", import.meta.url));
const outdir = `${lib}bundle/`;
const vendorFile = (pkg) => `vendor/${pkg.replace(/^@/, "").replace("/", "-")}.cjs`;

rmSync(outdir, { recursive: true, force: true });

const common = {
  bundle: true,
  platform: "node",
  target: "node20",
  packages: "bundle",
  // Stack traces of bugs (exit 70) map back to src/ under NODE_OPTIONS=--enable-source-maps.
  sourcemap: "linked",
  legalComments: "linked",
  logLevel: "warning",
};

// The vendor files: each package's entry (the one an `import` resolves to), as CommonJS.
const vendor = await build({
  ...common,
  entryPoints: Object.fromEntries(VENDOR.map((pkg) => [vendorFile(pkg).replace(/\.cjs$/, ""), `vendor:${pkg}`])),
  outdir,
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  // An ES module is strict: so is what was one, here and in cli.cjs.
  banner: { js: '"use strict";' },
  supported: { "dynamic-import": false },
  metafile: true,
  plugins: [
    {
      name: "vendor-entry",
      setup(b) {
        b.onResolve({ filter: /^vendor:/ }, async (args) => {
          const r = await b.resolve(args.path.slice("vendor:".length), { kind: "import-statement", resolveDir: lib });
          return r.errors.length ? { errors: r.errors } : { path: r.path };
        });
      },
    },
  ],
});

// How the CLI sees each vendor package. A package whose entry is CommonJS is required as it was
// imported before: esbuild's interop gives an importer what Node gives an ES module importing
// CommonJS. An ES module package turned into CommonJS must not be seen through that interop (its
// default export would be the whole namespace), so the CLI imports a shim that re-exports the
// package's own exports, named as Node names them.
const shims = new Map();
for (const [out, o] of Object.entries(vendor.metafile.outputs)) {
  if (!o.entryPoint) continue;
  const pkg = VENDOR.find((p) => out.endsWith(vendorFile(p)));
  if (vendor.metafile.inputs[o.entryPoint]?.format !== "esm") continue;
  const names = Object.keys(await import(pkg));
  const lines = [`const m = require("./${vendorFile(pkg)}");`];
  for (const [i, n] of names.entries()) lines.push(`const e${i} = m[${JSON.stringify(n)}];`, `export { e${i} as ${JSON.stringify(n)} };`);
  shims.set(pkg, lines.join("\n"));
}

const cli = await build({
  ...common,
  entryPoints: { cli: `${lib}cli/main.js` },
  outdir,
  outExtension: { ".js": ".cjs" },
  format: "cjs",
  banner: { js: '"use strict";' },
  // No import() is left: a vm.Script can run one only with a loader Node 20.10 does not have.
  supported: { "dynamic-import": false },
  // module-thread.js finds module-worker.js beside itself.
  define: { "import.meta.url": "__synthbuildImportMetaUrl" },
  inject: [fileURLToPath(new URL("./import-meta-url.js", import.meta.url))],
  metafile: true,
  plugins: [
    {
      name: "vendor",
      setup(b) {
        const exact = new RegExp(`^(${VENDOR.map((p) => p.replace(/[/.]/g, "\\$&")).join("|")})$`);
        b.onResolve({ filter: exact }, (args) =>
          shims.has(args.path) ? { path: args.path, namespace: "vendor-shim" } : { path: `./${vendorFile(args.path)}`, external: true },
        );
        // A shim's require of its vendor file (only there: chalk, for one, has a ./vendor/ of its own).
        b.onResolve({ filter: /^\.\/vendor\//, namespace: "vendor-shim" }, (args) => ({ path: args.path, external: true }));
        b.onLoad({ filter: /.*/, namespace: "vendor-shim" }, (args) => ({ contents: shims.get(args.path), loader: "js", resolveDir: outdir }));
      },
    },
  ],
});

// The only relative paths left to run time are the vendor files.
for (const o of Object.values(cli.metafile.outputs))
  for (const i of o.imports)
    if (i.external && i.path.startsWith(".") && !VENDOR.some((p) => i.path === `./${vendorFile(p)}`)) throw new Error(`cli.cjs requires ${i.path} at run time`);
// A vendor package imported any other way (a subpath) would be bundled a second time.
for (const input of Object.keys(cli.metafile.inputs)) {
  const twice = VENDOR.find((p) => input.includes(`node_modules/${p}/`));
  if (twice) throw new Error(`${input} is bundled into cli.cjs, though ${twice} is in vendor/: import it by its name only`);
}

await build({
  ...common,
  entryPoints: { "module-worker": `${lib}manifest/module-worker.js` },
  outdir,
  format: "esm",
});

// In a process of its own: it runs the CLI, and V8 takes a cache only under the flags it was made
// with, so none from NODE_OPTIONS (a plain `node` is what runs bin/synthbuild.js).
const made = spawnSync(process.execPath, [fileURLToPath(new URL("./code-cache.js", import.meta.url))], {
  stdio: ["ignore", "pipe", "pipe"],
  encoding: "utf8",
  env: { ...process.env, NODE_OPTIONS: "" },
});
// Without its caches the CLI is as it was, only slower to start: a warning, not a failed build.
if (made.status !== 0) {
  process.stderr.write(made.stdout + made.stderr);
  console.warn(`bundle-cli: scripts/code-cache.js exited ${made.status ?? made.signal}: some code caches are missing, the CLI starts slower`);
}
