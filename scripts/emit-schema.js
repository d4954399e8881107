// Writes schema/dataset.schema.json from the one zod schema (run by `npm run build`).
import { mkdirSync, writeFileSync } from "node:fs";
import { manifestJsonSchema } from "../lib/manifest/schema.js";

mkdirSync(new URL("../schema/", import.meta.url), { recursive: true });
writeFileSync(new URL("../schema/dataset.schema.json", import.meta.url), JSON.stringify(manifestJsonSchema(), null, 2) + "\n");
