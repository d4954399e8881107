import { extname, relative, resolve } from "node:path";
import { parse } from "csv-parse/sync";
import type { Diagnostic } from "../errors.js";
import { canonicalJson } from "../util/canonical-json.js";
import { suggestion } from "../util/did-you-mean.js";
import { hash64 } from "../util/hash.js";
import { type Roots, readInput } from "./confine.js";
import type { YamlSource } from "./source.js";
import type { Dimension, DimValue, ManifestInputs } from "./types.js";

/** A row as read, with the line it starts on (1-based, in the file), for diagnostics. */
interface Row {
  readonly line: number;
  readonly row: Record<string, unknown>;
}

type Table = { rows: Row[]; columns: string[] } | { problem: string; hint: string };

/**
 * A rows dimension: one value a row of a CSV or JSONL table. A value's identity (its key in sample
 * ids) is the row's canonical JSON, or the `key:` column's value; its text, which recipes hash, is
 * always the canonical JSON, so an edit of any column of a row reaches that row's samples only.
 */
export async function resolveRows(
  src: YamlSource,
  name: string,
  spec: { rows: string; key?: string },
  dir: string,
  roots: Roots,
  errors: Diagnostic[],
  inputs?: ManifestInputs,
): Promise<Dimension | undefined> {
  const path = ["dimensions", name, "rows"];
  const file = resolve(dir, spec.rows);
  const ext = extname(spec.rows).toLowerCase();
  if (ext !== ".csv" && ext !== ".jsonl") {
    errors.push(
      src.at(
        path,
        `${spec.rows}: a rows file is .csv or .jsonl`,
        ext === ".parquet"
          ? "Parquet is not read yet: export the table as CSV or JSONL"
          : "name the file by its format: data/seeds.csv (header row) or data/seeds.jsonl",
      ),
    );
    return undefined;
  }
  const read = await readInput(file, spec.rows, roots, `the path is relative to the manifest's folder (${relative(process.cwd(), dir) || "."})`);
  if ("problem" in read) {
    errors.push(src.at(path, read.problem, read.hint));
    return undefined;
  }
  if (inputs) inputs.files[file] = hash64(read.text);
  const table = ext === ".csv" ? readCsv(spec.rows, read.text) : readJsonl(spec.rows, read.text);
  if ("problem" in table) {
    errors.push(src.at(path, table.problem, table.hint));
    return undefined;
  }
  if (table.rows.length === 0) {
    errors.push(src.at(path, `${spec.rows} has no rows`, ext === ".csv" ? "a header row naming the columns, then one row a value" : "one JSON object a line"));
    return undefined;
  }
  const { key } = spec;
  if (key !== undefined && !table.columns.includes(key)) {
    errors.push(
      src.at(["dimensions", name, "key"], `${spec.rows} has no column '${key}'`, suggestion(key, table.columns) ?? `its columns: ${table.columns.join(", ")}`),
    );
    return undefined;
  }
  const values: DimValue[] = [];
  const seen = new Map<string, number>();
  const lines: number[] = [];
  let ok = true;
  for (const { line, row } of table.rows) {
    const text = canonicalJson(row);
    let id = text;
    if (key !== undefined) {
      const k = Object.hasOwn(row, key) ? row[key] : undefined;
      if (typeof k !== "string" && typeof k !== "number") {
        errors.push(
          src.at(
            ["dimensions", name, "key"],
            `${spec.rows}:${line}: key column '${key}' is ${k === undefined ? "missing" : `not text or a number (${JSON.stringify(k)})`}`,
            "every row needs its own key: text or a number",
          ),
        );
        ok = false;
        continue;
      }
      id = String(k);
    }
    const first = seen.get(id);
    if (first !== undefined) {
      errors.push(
        src.at(
          path,
          key !== undefined
            ? `${spec.rows}:${line}: key '${id}' already names the row on line ${first}`
            : `${spec.rows}:${line}: this row repeats the row on line ${first}`,
          key !== undefined
            ? `each row needs its own ${key}`
            : "each row may appear once; a repeated row would be the same sample twice (use combine.repeat for more samples)",
        ),
      );
      ok = false;
      continue;
    }
    seen.set(id, line);
    values.push({ key: id, text, weight: 1, row });
    lines.push(line);
  }
  if (!ok) return undefined;
  return { name, kind: "rows", values, columns: table.columns, rowLines: lines, file: spec.rows, ...(key !== undefined && { keyColumn: key }) };
}

/**
 * RFC 4180 CSV through csv-parse: quoted fields with commas, quotes and newlines in them, CRLF or
 * LF, a BOM. The first record names the columns; every value is text, as the file has it.
 */
function readCsv(shown: string, text: string): Table {
  let records: { record: string[]; raw: string; info: { lines: number } }[];
  try {
    records = parse(text, { bom: true, skip_empty_lines: true, info: true, raw: true }) as unknown as typeof records;
  } catch (err) {
    const e = err as Error & { lines?: number };
    return {
      problem: `${shown}${e.lines ? `:${e.lines}` : ""}: not CSV: ${e.message.replace(/ at line \d+/, "").replace(/ on line \d+/, "")}`,
      hint: 'quote a field that holds commas, quotes or line breaks: "a, b", and double a quote inside one: "say ""hi"""',
    };
  }
  if (records.length === 0) return { rows: [], columns: [] };
  const [header, ...body] = records;
  const columns = header!.record;
  const where = new Map<string, number>();
  for (const [i, c] of columns.entries()) {
    if (c.trim() === "")
      return { problem: `${shown}:${startLine(header!)}: column ${i + 1} of the header has no name`, hint: "the first row names every column" };
    if (where.has(c)) return { problem: `${shown}:${startLine(header!)}: column '${c}' is named twice in the header`, hint: "give each column its own name" };
    where.set(c, i);
  }
  const rows = body.map((r) => {
    const row: Record<string, unknown> = {};
    columns.forEach((c, i) => {
      Object.defineProperty(row, c, { value: r.record[i], enumerable: true, writable: true, configurable: true });
    });
    return { line: startLine(r), row };
  });
  return { rows, columns };
}

/**
 * csv-parse tells the line a record ends on; one with quoted line breaks starts earlier. Its raw
 * text begins with the empty lines skipped before it, which are not the record's.
 */
function startLine(r: { raw: string; info: { lines: number } }): number {
  const inner = r.raw.replace(/^(?:\r?\n)+/, "").replace(/\r?\n$/, "");
  return r.info.lines - (inner.match(/\n/g)?.length ?? 0);
}

function readJsonl(shown: string, text: string): Table {
  const rows: Row[] = [];
  const columns = new Set<string>();
  const lines = text.replace(/^\uFEFF/, "").split(/\r?\n/);
  for (const [i, l] of lines.entries()) {
    if (l.trim() === "") continue;
    let v: unknown;
    try {
      v = JSON.parse(l);
    } catch (err) {
      return { problem: `${shown}:${i + 1}: not JSON: ${(err as Error).message}`, hint: 'one JSON object a line, e.g. {"id": 1, "question": "..."}' };
    }
    if (typeof v !== "object" || v === null || Array.isArray(v))
      return {
        problem: `${shown}:${i + 1}: a row is a JSON object, not ${Array.isArray(v) ? "a list" : JSON.stringify(v)}`,
        hint: "one object a line: its keys are the columns",
      };
    for (const k of Object.keys(v)) columns.add(k);
    rows.push({ line: i + 1, row: v as Record<string, unknown> });
  }
  return { rows, columns: [...columns] };
}
