// Injected into lib/bundle/cli.cjs by scripts/bundle-cli.js: `import.meta.url` of the bundled ES
// modules, which CommonJS has not, is the bundle file's own URL (what it was in an ES module bundle).
export const __synthbuildImportMetaUrl = require("node:url").pathToFileURL(__filename).href;
