/**
 * synthbuild's library API. The CLI is a thin layer over these functions; everything it can do,
 * a program can do by importing them.
 */

export { RemoteAccessError, RemoteObjectError, RemoteUnavailableError } from "./cache/remote/types.js";
export { type BuildOptions, type BuildResult, build, type Shard } from "./commands/build.js";
export type { CommonOptions } from "./commands/context.js";
export { type DiffOptions, type DiffResult, diff } from "./commands/diff.js";
export { drift, type StepDrift } from "./commands/drift.js";
export { type GcOptions, type GcResult, gc } from "./commands/gc.js";
export { init } from "./commands/init.js";
export { type LockOptions, type LockResult, lock } from "./commands/lock.js";
export { type MigrateOptions, type MigrateResult, migrate } from "./commands/migrate.js";
export { type PlanOptions, type PlanResult, plan, type StepPlan } from "./commands/plan.js";
export { type ProbeLevel, type ProbeOptions, type ProbeResult, probe } from "./commands/probe.js";
export { type PullSummary, pull } from "./commands/pull.js";
export { type PushSummary, push, type SyncOptions } from "./commands/push.js";
export { type ReportData, type ReportOptions, report } from "./commands/report.js";
export { type RerollOptions, type RerollResult, reroll } from "./commands/reroll.js";
export { type ShowResult, show } from "./commands/show.js";
export { type BatchStatus, type StatusOptions, type StatusResult, status } from "./commands/status.js";
export { type VerifyResult, verify } from "./commands/verify.js";
export {
  type Diagnostic,
  EndpointError,
  FrozenError,
  formatDiagnostic,
  InterruptedError,
  ManifestError,
  ManifestSyntaxError,
  SynthbuildError,
  UsageError,
  VerifyError,
} from "./errors.js";
export type { BuildEvents } from "./events.js";
export { expand } from "./expand/expand.js";
export type { Sample } from "./expand/sample.js";
export { type Lock, type LockSample, parseLock, serializeLock } from "./lock/lockfile.js";
export { type LoadOptions, loadManifest, parseManifest } from "./manifest/load.js";
export { manifestJsonSchema } from "./manifest/schema.js";
export type { Manifest } from "./manifest/types.js";
export { type Redact, redactor, secretsIn } from "./util/redact.js";
export { VERSION } from "./version.js";
