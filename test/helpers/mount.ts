import { execFileSync } from "node:child_process";

/** Run mount(8) with these arguments: undefined when it worked, else why not (no root, no such filesystem). */
export function mount(args: string[]): string | undefined {
  try {
    execFileSync("mount", args, { stdio: "pipe" });
    return undefined;
  } catch (err) {
    return String((err as { stderr?: Buffer }).stderr ?? err).trim() || "mount failed";
  }
}
