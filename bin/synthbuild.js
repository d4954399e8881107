#!/usr/bin/env node
// The bundle of lib/cli/main.js (scripts/bundle-cli.js): one file to load, not hundreds.
import { main } from "../lib/bundle/cli.js";

// Exit explicitly: keep-alive sockets of the HTTP client must not hold a finished build open.
process.exit(await main(process.argv.slice(2)));
