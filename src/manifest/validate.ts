import type { z } from "zod";
import type { Diagnostic } from "../errors.js";
import { suggestion } from "../util/did-you-mean.js";
import { licenseGuess, licenseHint } from "./license.js";
import { manifestSchema, type RawManifest, UNKNOWN_KEY_TAG } from "./schema.js";
import { formatPath, type KeyPath, type YamlSource } from "./source.js";

type Issue = z.core.$ZodIssue;

/** Check the raw data against the schema; every issue becomes a positioned diagnostic. */
export function validateSchema(src: YamlSource, data: unknown): { manifest?: RawManifest; errors: Diagnostic[] } {
  const r = manifestSchema().safeParse(data);
  if (r.success) return { manifest: r.data, errors: [] };
  const colons = colonValues(src, data);
  const errors: Diagnostic[] = colons.map((c) => c.diagnostic);
  for (const issue of r.error.issues) errors.push(...toDiagnostics(src, data, issue, []));
  // What zod says about such an item (an unknown key, a missing value) is the colon's echo.
  const echoes = (d: Diagnostic) => colons.some((c) => d.path === c.path || d.path.startsWith(`${c.path}.`) || d.path.startsWith(`${c.path}[`));
  return { errors: dedupeDiagnostics(errors.filter((d) => colons.some((c) => c.diagnostic === d) || !echoes(d))) };
}

/**
 * `- 2001: a space odyssey` is a one-pair mapping to YAML: the author meant one value with a colon
 * in it. Found in every list of dimension values, so that the diagnostic can say to quote it.
 */
function colonValues(src: YamlSource, data: unknown): { path: string; diagnostic: Diagnostic }[] {
  const dims = valueAt(data, ["dimensions"]);
  if (dims === null || typeof dims !== "object") return [];
  const lists: KeyPath[] = [];
  for (const [name, spec] of Object.entries(dims)) {
    if (Array.isArray(spec)) lists.push(["dimensions", name]);
    else if (spec && typeof spec === "object") {
      if (Array.isArray(spec.default)) lists.push(["dimensions", name, "default"]);
      for (const [k, v] of Object.entries(spec.values ?? {})) if (Array.isArray(v)) lists.push(["dimensions", name, "values", k]);
    }
  }
  const out: { path: string; diagnostic: Diagnostic }[] = [];
  for (const list of lists) {
    (valueAt(data, list) as unknown[]).forEach((item, i) => {
      if (item === null || typeof item !== "object" || Array.isArray(item)) return;
      const keys = Object.keys(item);
      if (keys.length !== 1 || keys[0] === "value" || keys[0] === "weight") return;
      const path = [...list, i];
      const value = Object.values(item)[0];
      const node = src.nodeAt(path);
      const written = node?.range ? src.text.slice(node.range[0], node.range[1]).trim() : `${keys[0]}: ${String(value)}`;
      out.push({
        path: formatPath(path),
        diagnostic: src.at(
          path,
          `'${written}' is read as a mapping (key ${keys[0]}, value ${typeof value === "string" ? JSON.stringify(value) : describe(value)}), not as one value: in YAML, ': ' separates a key from its value`,
          `quote the value: - ${JSON.stringify(written)}`,
        ),
      });
    });
  }
  return out;
}

function toDiagnostics(src: YamlSource, data: unknown, issue: Issue, prefix: KeyPath): Diagnostic[] {
  const path = [...prefix, ...(issue.path as (string | number)[])];
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = decodeKnown(issue.message);
      return issue.keys.map((key) =>
        src.at(
          [...path, key],
          `unknown key '${key}'`,
          elsewhere(data, path, key) ?? suggestion(key, known) ?? (known.length ? `allowed here: ${known.join(", ")}` : undefined),
          {
            key: true,
          },
        ),
      );
    }
    case "invalid_union": {
      const branch = bestBranch(issue.errors, path, data);
      if (branch) return branch.flatMap((i) => toDiagnostics(src, data, i, path));
      if (valueAt(data, path) === undefined) return [src.at(path.slice(0, -1), `missing required key '${String(path[path.length - 1])}'`, requiredHint(path))];
      const got = describe(valueAt(data, path));
      return [src.at(path, `expected ${unionExpectation(path)}, got ${got}`, unionHint(path))];
    }
    case "invalid_type": {
      const value = valueAt(data, path);
      if (value === undefined) {
        const key = path[path.length - 1];
        return [src.at(path.slice(0, -1), `missing required key '${String(key)}' (${issue.expected})`, requiredHint(path))];
      }
      return [src.at(path, `expected ${issue.expected}, got ${describe(value)}`, formatPath(path) === "card.license" ? licenseHint(value) : undefined)];
    }
    case "invalid_value": {
      const value = valueAt(data, path);
      if (value === undefined) return [src.at(path.slice(0, -1), `missing required key '${String(path[path.length - 1])}'`, requiredHint(path))];
      const options = issue.values.map((v) => String(v));
      const hint = typeof value === "string" ? suggestion(value, options) : undefined;
      return [
        src.at(path, `expected ${options.length === 1 ? JSON.stringify(issue.values[0]) : "one of " + options.join(", ")}, got ${describe(value)}`, hint),
      ];
    }
    case "invalid_format":
      return [src.at(path, issue.message.startsWith("Invalid") ? `not a valid ${issue.format}` : issue.message, formatHint(path, valueAt(data, path)))];
    case "custom":
      return [src.at(path, issue.message, formatHint(path, valueAt(data, path)))];
    case "too_small":
    case "too_big":
      return [src.at(path, issue.message.replace(/^Too (small|big): /, "too $1: "))];
    default:
      return [src.at(path, issue.message)];
  }
}

/**
 * zod reports every branch of a failed union. Show the one the author most plausibly meant: a
 * branch whose shape matches at the top (its errors are deeper or about keys), with the fewest
 * issues. With none, the caller describes what shapes were allowed.
 */
function bestBranch(branches: Issue[][], path: KeyPath, data: unknown): Issue[] | undefined {
  const value = valueAt(data, path);
  let best: Issue[] | undefined;
  for (const b of branches) {
    const rootTypeMismatch = b.some(
      (i) => i.path.length === 0 && (i.code === "invalid_type" || (i.code === "invalid_union" && !bestBranch(i.errors, [], value))),
    );
    if (rootTypeMismatch) continue;
    if (!best || score(b) < score(best)) best = b;
  }
  return best;
}

function score(issues: Issue[]): number {
  // An unknown key is a likelier typo than a whole missing structure.
  return issues.reduce((n, i) => n + (i.code === "unrecognized_keys" ? 1 : 2), 0);
}

function unionExpectation(path: KeyPath): string {
  if (path[0] === "dimensions") return "a list of values, or a mapping with file:, glob: or by:/values:";
  if (path[0] === "output") return "an output mapping (path, format, ...) or a list of them";
  return "a different kind of value";
}

function unionHint(path: KeyPath): string | undefined {
  if (path[0] === "dimensions") return "e.g. genre: [comedy, horror]  or  place: { file: data/places.txt }";
  return undefined;
}

/** A key that belongs somewhere else in the manifest, where the author looks for it first. */
function elsewhere(data: unknown, path: KeyPath, key: string): string | undefined {
  const where = formatPath(path);
  if ((key === "license" || key === "licence") && where !== "card")
    return `the dataset card's license goes under the top-level key card: card: { license: ${licenseGuess(valueAt(data, [...path, key])) ?? "mit"} }`;
  return undefined;
}

function formatHint(path: KeyPath, value: unknown): string | undefined {
  if (formatPath(path) === "card.license") return licenseHint(value);
  if (path[path.length - 1] === "base_url") return "e.g. base_url: http://localhost:8000/v1, or leave it empty for the provider's default";
  return undefined;
}

function requiredHint(path: KeyPath): string | undefined {
  const p = formatPath(path);
  if (p === "version") return "start the manifest with `version: 1`";
  if (p === "output") return "add an output, e.g. output: { path: dist/data.jsonl, format: openai-chat, prompt: ..., completion: ... }";
  if (p === "dimensions") return "add at least one dimension, e.g. dimensions: { genre: [comedy, horror] }";
  return undefined;
}

function decodeKnown(message: string): string[] {
  if (!message.startsWith(UNKNOWN_KEY_TAG)) return [];
  try {
    return JSON.parse(message.slice(UNKNOWN_KEY_TAG.length)) as string[];
  } catch {
    return [];
  }
}

export function valueAt(data: unknown, path: KeyPath): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}

export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null (an empty value)";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") return `the string ${JSON.stringify(value.length > 40 ? value.slice(0, 37) + "..." : value)}`;
  return `${typeof value} ${String(value)}`;
}

function dedupeDiagnostics(ds: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  // "missing 'file'" beside "unknown key 'fil', did you mean 'file'?" says the same thing twice.
  const typoed = new Set(
    ds.flatMap((d) => (d.hint?.startsWith("did you mean") ? [`${d.path.replace(/(\.[^.[]+|\[[^\]]+\])$/, "")}|${d.hint.slice(14, -2)}`] : [])),
  );
  return ds.filter((d) => {
    const m = /^missing required key '([^']+)'/.exec(d.message);
    if (m && typoed.has(`${d.path}|${m[1]}`)) return false;
    const k = `${d.line}:${d.col}:${d.message}`;
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}
