import type { CompiledTemplate } from "../template/engine.js";
import type { Manifest, Step } from "./types.js";

/**
 * Things a manifest pays for or multiplies without effect, said as warnings when it is read: a
 * generate step nothing reads, a dimension no prompt reads, and placeholders of other tools
 * (`{genre}`, `%s`) left in a template, which render as literal text.
 */
export function wastedWork(m: Manifest): string[] {
  const warnings: string[] = [];
  const runs = m.steps.some((s) => s.kind === "run");
  const outputReads = new Set(m.outputs.flatMap((o) => outputTemplates(o).flatMap(([, t]) => t.reads)));

  // A run module is given every variable: what it reads cannot be known, so it reads everything.
  if (!runs)
    m.steps.forEach((step, i) => {
      if (step.kind !== "generate") return;
      const readLater = m.steps.slice(i + 1).some((s) => readsOf(s).includes(step.id));
      if (!readLater && !outputReads.has(step.id))
        warnings.push(
          `step '${step.id}' is read by no output and no later step: its requests are paid for nothing (read {{ ${step.id} }} in an output, or remove the step)`,
        );
    });

  const promptReads = new Set(m.steps.flatMap((s) => (s.kind === "generate" ? s.messages.flatMap((msg) => msg.template.reads) : [])));
  const parents = new Set(m.dimensions.flatMap((d) => (d.by ? [d.by] : [])));
  // zip pairs values up rather than multiplying them: a label no prompt reads costs nothing there.
  if (!runs && m.combine.mode !== "zip" && m.steps.some((s) => s.kind === "generate"))
    for (const d of m.dimensions) {
      if (d.values.length < 2 || parents.has(d.name) || promptReads.has(d.name) || promptReads.has(`${d.name}_name`)) continue;
      warnings.push(
        `dimension '${d.name}' (${d.values.length} values) is read by no prompt: it multiplies the samples, not what is asked` +
          (promptReads.has("nonce") || promptReads.has("id") ? ", and each copy pays for its own request" : ", and the copies share one answer") +
          ` (read {{ ${d.name} }} in a prompt, or remove it)`,
      );
    }

  const names = new Set([...m.dimensions.map((d) => d.name), ...m.steps.map((s) => s.id), "nonce", "index", "id"]);
  const templates: [string, CompiledTemplate][] = [
    ...m.steps.flatMap((s) =>
      s.kind === "generate" ? s.messages.map((msg) => [`step '${s.id}' (${msg.role} message)`, msg.template] as [string, CompiledTemplate]) : [],
    ),
    ...m.outputs.flatMap((o) => outputTemplates(o).map(([key, t]) => [`output ${o.path} ${key}`, t] as [string, CompiledTemplate])),
  ];
  for (const [where, t] of templates) {
    const found = foreignPlaceholder(t.source, names);
    if (found) warnings.push(`${where} has ${found.text}, which renders as that text: synthbuild's templates read ${found.fix}`);
  }
  return warnings;
}

function readsOf(s: Step): string[] {
  switch (s.kind) {
    case "generate":
      return s.messages.flatMap((msg) => msg.template.reads);
    case "filter":
      return [...(s.field === undefined ? [] : [s.field]), ...(s.where?.names ?? [])];
    case "map":
    case "dedupe":
      return [s.field];
    case "run":
      return [];
  }
}

function outputTemplates(o: Manifest["outputs"][number]): [string, CompiledTemplate][] {
  const out: [string, CompiledTemplate][] = [];
  for (const key of ["system", "prompt", "completion", "name"] as const) {
    const t = o[key];
    if (t) out.push([key, t]);
  }
  for (const [field, t] of o.record ?? []) out.push([`record.${field}`, t]);
  return out;
}

/** `{genre}` (a name this manifest has, in single braces) or a printf `%s`, outside `{{ }}` and `{% %}`. */
function foreignPlaceholder(source: string, names: ReadonlySet<string>): { text: string; fix: string } | undefined {
  const text = source.replace(/\{\{[\s\S]*?\}\}|\{%[\s\S]*?%\}/g, " ");
  for (const m of text.matchAll(/\{\s*([A-Za-z_]\w*)\s*\}/g)) if (names.has(m[1]!)) return { text: m[0], fix: `{{ ${m[1]} }}` };
  const printf = /%(?:\(([A-Za-z_]\w*)\))?[sd](?![A-Za-z])/.exec(text);
  if (printf) return { text: printf[0], fix: printf[1] ? `{{ ${printf[1]} }}` : "names, as {{ genre }}" };
  return undefined;
}
