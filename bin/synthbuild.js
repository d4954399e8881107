#!/usr/bin/env node
import { main } from "../lib/cli/main.js";

// Exit explicitly: keep-alive sockets of the HTTP client must not hold a finished build open.
process.exit(await main(process.argv.slice(2)));
