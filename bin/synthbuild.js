#!/usr/bin/env node
// CommonJS (bin/package.json), not an ES module: Node starts a CommonJS entry point without its ES
// module loader, about 12 ms sooner. It loads the bundle of lib/cli/main.js (scripts/bundle-cli.js),
// one file, not hundreds, with the V8 code cache made for it at build time (lib/cli/bundle-loader.cjs).
"use strict";
const { join } = require("node:path");
const { loadBundle } = require("../lib/cli/bundle-loader.cjs");

// As an unsettled top-level await did in the ES module this was: a command whose promise never
// settles (a bug) must not exit 0 once nothing is left to wait for.
process.exitCode = 13;
loadBundle(join(__dirname, "..", "lib", "bundle", "cli.cjs"))
  .main(process.argv.slice(2))
  .then(async (code) => {
    // Exit explicitly (keep-alive sockets of the HTTP client must not hold a finished build open),
    // but only once stdout and stderr have drained: a pipe takes 64 KB at a time, and a reader such
    // as `jq` must get every byte. A reader that went away (`| head`) ends the wait too.
    await Promise.all(
      [process.stdout, process.stderr].map(
        (s) =>
          new Promise((done) => {
            if (!s.writableLength) return done();
            s.once("drain", done);
            s.once("error", done);
            s.once("close", done);
          }),
      ),
    );
    process.exit(code);
  });
