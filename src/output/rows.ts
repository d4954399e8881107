import type { Manifest, Output } from "../manifest/types.js";
import type { SampleRun } from "../plan/pipeline.js";
import { nonceFor } from "../plan/scope.js";
import { type CompiledTemplate, renderTemplate } from "../template/engine.js";

/** The variables an output template sees: everything a step could read, plus every step's output. */
export function outputScope(m: Manifest, run: SampleRun): Record<string, unknown> {
  return { ...run.scope, nonce: nonceFor(m, run.sample, "output") };
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
      for (const [field, t] of out.record!) rec[field] = renderTemplate(t, scope);
      return rec;
    }
    case "files":
      throw new Error("the files format has no records");
  }
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
