#!/usr/bin/env node
// The bundle of lib/cli/main.js (scripts/bundle-cli.js): one file to load, not hundreds, compiled
// with the V8 code cache made for it at build time (lib/cli/bundle-loader.cjs).
import { loadBundle } from "../lib/cli/bundle-loader.cjs";

const { main } = loadBundle(new URL("../lib/bundle/cli.cjs", import.meta.url));
const code = await main(process.argv.slice(2));
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
