import type { Manifest, Output } from "../manifest/types.js";
import type { SampleRun } from "../plan/pipeline.js";
import { nonceFor } from "../plan/scope.js";
import { type CompiledTemplate, readPaths, renderTemplate } from "../template/engine.js";
import { fieldValue } from "../template/structured.js";

/** The variables an output template sees: everything a step could read, plus every step's output. */
export function outputScope(m: Manifest, run: SampleRun): Record<string, unknown> {
  return { ...run.scope, nonce: nonceFor(m, run.sample, "output") };
}

/** Every name an output's templates read. */
export function outputReads(out: Output): string[] {
  const ts = [out.system, out.prompt, out.completion, ...(out.record ?? []).map(([, t]) => t)];
  return ts.flatMap((t) => t?.reads ?? []);
}

const r = (t: CompiledTemplate | undefined, scope: Record<string, unknown>) => (t ? renderTemplate(t, scope) : "");

/** One JSONL record for the line-oriented formats. */
export function renderRecord(out: Output, scope: Record<string, unknown>): Record<string, unknown> {
  switch (out.format) {
    case "openai-chat": {
      const messages: { role: string; content: string }[] = [];
      const system = out.system ? r(out.system, scope) : "";
      if (system) messages.push({ role: "system", content: system });
      messages.push({ role: "user", content: r(out.prompt, scope) });
      messages.push({ role: "assistant", content: r(out.completion, scope) });
      return { messages };
    }
    case "prompt-completion":
      return { prompt: r(out.prompt, scope), completion: r(out.completion, scope) };
    case "jsonl": {
      const rec: Record<string, unknown> = {};
      for (const [field, t] of out.record!) rec[field] = recordField(t, scope);
      return rec;
    }
    case "files":
      throw new Error("the files format has no records");
  }
}

/**
 * A record field that is one `{{ name.path }}` and nothing else, where `name` has fields (a row of
 * a rows dimension, a structured answer), keeps the field's JSON type: a number stays a number, an
 * object an object. Everything else is text as before, plain dimension values and `{{ q }}` (the
 * answer's raw text) included, so existing datasets keep their bytes.
 */
function recordField(t: CompiledTemplate, scope: Record<string, unknown>): unknown {
  const path = typedPath(t);
  if (path) {
    const v = fieldValue(scope[path[0]!], path.slice(1));
    if (v !== undefined) return v;
  }
  return renderTemplate(t, scope);
}

const typedPaths = new WeakMap<CompiledTemplate, (string | number)[] | null>();
function typedPath(t: CompiledTemplate): (string | number)[] | undefined {
  let p = typedPaths.get(t);
  if (p === undefined) {
    const paths = readPaths(t);
    const one = /^\{\{-?[^{}|]*-?\}\}$/.test(t.source) && paths.length === 1 && paths[0]!.length > 1;
    p = one && paths[0]!.every((s) => typeof s === "string" || typeof s === "number") ? (paths[0] as (string | number)[]) : null;
    typedPaths.set(t, p);
  }
  return p ?? undefined;
}

/**
 * Why the output's consumer would reject this row, or undefined: no output format writes a row
 * its consumer rejects. openai-chat: OpenAI's fine-tuning format check refuses a message without
 * content; prompt-completion: a row with nothing to complete teaches nothing. A blank text counts
 * as empty. (`jsonl` records have no known consumer: written as rendered.)
 */
export function rejectedBy(out: Output, record: Record<string, unknown>): string | undefined {
  const blank = (v: unknown) => typeof v !== "string" || v.trim() === "";
  switch (out.format) {
    case "openai-chat":
      // An empty system message is left out when rendered; the others must say something.
      for (const msg of record.messages as { role: string; content: string }[])
        if (msg.role !== "system" && blank(msg.content)) return `its ${msg.role} message would be empty, which OpenAI's fine-tuning format check rejects`;
      return undefined;
    case "prompt-completion":
      return blank(record.completion) ? "its completion would be empty" : undefined;
    default:
      return undefined;
  }
}
