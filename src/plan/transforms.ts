import type { FilterStep, MapStep } from "../manifest/types.js";

/**
 * map: deterministic text transforms, applied in a fixed order: extract, replace, trim. An
 * extract that finds nothing drops the sample (the answer is not in the shape asked for), rather
 * than passing the whole answer on as if it were the extract.
 */
export function applyMap(step: MapStep, input: string): { text: string } | { drop: string } {
  let text = input;
  if (step.extract) {
    const found = step.extract === "fenced" ? extractFenced(text) : extractJson(text);
    if (found === undefined) return { drop: `no ${step.extract === "fenced" ? "fenced code block" : "JSON value"} in ${step.field}` };
    text = found;
  }
  for (const r of step.replace) text = text.replace(r.pattern, r.with);
  if (step.trim) text = text.trim();
  return { text };
}

function extractFenced(text: string): string | undefined {
  const m = /```[^\n`]*\n([\s\S]*?)```/.exec(text);
  return m ? m[1]!.replace(/\n$/, "") : undefined;
}

/** The first parseable JSON object or array in the text (fenced or bare), re-serialised compactly. */
function extractJson(text: string): string | undefined {
  const fenced = extractFenced(text);
  for (const candidate of fenced ? [fenced, text] : [text]) {
    for (let i = 0; i < candidate.length; i++) {
      const ch = candidate[i];
      if (ch !== "{" && ch !== "[") continue;
      const end = matchingBracket(candidate, i);
      if (end < 0) continue;
      try {
        return JSON.stringify(JSON.parse(candidate.slice(i, end + 1)));
      } catch {
        // not JSON after all; keep scanning
      }
    }
  }
  return undefined;
}

function matchingBracket(s: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < s.length; i++) {
    const c = s[i];
    if (inString) {
      if (c === "\\") i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === "{" || c === "[") depth++;
    else if (c === "}" || c === "]") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/** filter: the reason a sample is dropped, or undefined to keep it. */
export function filterReason(step: FilterStep, scope: Readonly<Record<string, unknown>>, truncated: ReadonlySet<string> | undefined): string | undefined {
  if (step.field !== undefined) {
    const reason = textReason(step as FilterStep & { field: string }, String(scope[step.field] ?? ""), truncated?.has(step.field) ?? false);
    if (reason) return reason;
  }
  return step.where?.test(scope);
}

function textReason(step: FilterStep & { field: string }, text: string, truncated: boolean): string | undefined {
  if (step.dropTruncated && truncated) return `${step.field} was cut off by max_tokens`;
  if (step.minChars !== undefined && text.length < step.minChars) return `${step.field} has ${text.length} chars, fewer than ${step.minChars}`;
  if (step.maxChars !== undefined && text.length > step.maxChars) return `${step.field} has ${text.length} chars, more than ${step.maxChars}`;
  for (const re of step.mustMatch) if (!re.test(text)) return `${step.field} does not match /${re.source}/`;
  for (const re of step.mustNotMatch) if (re.test(text)) return `${step.field} matches /${re.source}/`;
  return undefined;
}

/** dedupe: the text two samples are compared by. */
export function dedupeKey(text: string, ignoreCase: boolean, ignoreWhitespace: boolean): string {
  let t = text;
  if (ignoreWhitespace) t = t.replace(/\s+/g, " ").trim();
  if (ignoreCase) t = t.toLowerCase();
  return t;
}
