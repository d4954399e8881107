// Makes the V8 code cache of each file of the CLI bundle (lib/bundle/*.cjs, vendor/*.cjs), run by
// scripts/bundle-cli.js in a process with no NODE_OPTIONS.
//
// A cache holds the bytecode of the functions compiled when it is made. Made right after compiling,
// it would hold little more than each file's top level; so the bundle first runs what most
// commands run (--help, init, plan, an offline build and its no-op rebuild, in a temp folder),
// and each cache then holds what those ran. A function none of them ran is compiled on first use,
// as without a cache. Nothing here decides what a command does: a cache only saves compiling.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cachedDataFor, cacheFile, cacheFileOf, compileBundleFile, loadBundle } from "../lib/cli/bundle-loader.cjs";

const bundle = fileURLToPath(new URL("../lib/bundle/", import.meta.url));
const files = [
  join(bundle, "cli.cjs"),
  ...readdirSync(join(bundle, "vendor"))
    .filter((f) => f.endsWith(".cjs"))
    .map((f) => join(bundle, "vendor", f)),
];

// Nothing of the machine's own setup: no key, endpoint, cache folder, remote or proxy is used, and
// the stamps' machine key goes to the temp folder.
const dir = mkdtempSync(join(tmpdir(), "synthbuild-code-cache-"));
for (const v of Object.keys(process.env)) if (/^(OPENAI_|SYNTHBUILD_|AWS_)|^(https?|all|no)_proxy$/i.test(v)) delete process.env[v];
Object.assign(process.env, { CI: "true", NO_COLOR: "1", SYNTHBUILD_STATE_DIR: join(dir, "state") });

// Source maps would make the loader leave the bundle to require (none are on without NODE_OPTIONS).
process.setSourceMapsEnabled(false);
const compiled = new Map();
const cli = loadBundle(files[0], { noCache: true, compiled: (file, script, source) => compiled.set(file, { script, source }) });
// A run that fails here leaves caches of what ran until then: start-up is slower, nothing else
// changes (bundle-cli.js warns; test/e2e/startup.test.ts fails).
let failed;
try {
  process.chdir(dir);
  for (const args of [["--help"], ["init"], ["plan"], ["build", "--offline"], ["build", "--offline"]]) {
    const code = await cli.main(args);
    if (code !== 0) throw new Error(`synthbuild ${args.join(" ")} exited ${code}`);
  }
} catch (e) {
  failed = e;
} finally {
  process.chdir(bundle);
  rmSync(dir, { recursive: true, force: true });
}

for (const file of files) {
  const c = compiled.get(file) ?? { source: readFileSync(file), script: undefined };
  const data = (c.script ?? compileBundleFile(file, c.source)).createCachedData();
  // A cache this Node does not take would only be read in vain by every run.
  if (compileBundleFile(file, c.source, cachedDataFor(c.source, cacheFile(c.source, data))).cachedDataRejected) {
    failed ??= new Error(`V8 rejected the code cache just made for ${file}`);
    continue;
  }
  writeFileSync(cacheFileOf(file), cacheFile(c.source, data));
}
if (failed) {
  process.stderr.write(`code-cache: ${failed.stack ?? failed}\n`);
  process.exitCode = 2;
}
