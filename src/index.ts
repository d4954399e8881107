/**
 * synthbuild's library API. The CLI is a thin layer over these functions; everything it can do,
 * a program can do by importing them.
 */
export { VERSION } from "./version.js";
export { build, type BuildOptions, type BuildResult } from "./commands/build.js";
export { plan, type PlanOptions, type PlanResult, type StepPlan } from "./commands/plan.js";
export { verify, type VerifyResult } from "./commands/verify.js";
export { show, type ShowResult } from "./commands/show.js";
export { gc, type GcResult } from "./commands/gc.js";
export { init } from "./commands/init.js";
export type { CommonOptions } from "./commands/context.js";
export type { BuildEvents } from "./events.js";
export { loadManifest, parseManifest, type LoadOptions } from "./manifest/load.js";
export type { Manifest } from "./manifest/types.js";
export { manifestJsonSchema } from "./manifest/schema.js";
export { expand } from "./expand/expand.js";
export type { Sample } from "./expand/sample.js";
export { parseLock, serializeLock, type Lock, type LockSample } from "./lock/lockfile.js";
export {
  SynthbuildError,
  ManifestError,
  ManifestSyntaxError,
  UsageError,
  FrozenError,
  VerifyError,
  InterruptedError,
  formatDiagnostic,
  type Diagnostic,
} from "./errors.js";
