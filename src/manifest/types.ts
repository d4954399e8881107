import type { CompiledTemplate } from "../template/engine.js";

/** The resolved manifest: every file read, every template compiled, every default applied. */

export interface DimValue {
  /** What identifies the value in sample ids: the text, or a glob value's file path. */
  readonly key: string;
  /** What templates see. */
  readonly text: string;
  readonly weight: number;
  /** A glob value's file name without extension (exposed as `<dimension>_name`). */
  readonly name?: string;
}

export interface Dimension {
  readonly name: string;
  readonly kind: "list" | "file" | "glob" | "conditional";
  /** All values (for a conditional dimension: the union over its parent's values). */
  readonly values: DimValue[];
  /** Conditional dimensions: the parent's name and the values under each parent value key. */
  readonly by?: string;
  readonly byValue?: ReadonlyMap<string, DimValue[]>;
}

export type ProviderKind = "openai" | "ollama" | "echo";

export interface ModelConfig {
  readonly provider: ProviderKind;
  readonly name: string;
  readonly baseUrl?: string;
  readonly apiKeyEnv: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly extraBody: Readonly<Record<string, unknown>>;
  readonly params: Readonly<Record<string, unknown>>;
  readonly concurrency: number;
  readonly rpm?: number;
  readonly tpm?: number;
  readonly timeoutS: number;
  readonly retries: number;
  readonly price?: { readonly inputPerMtok: number; readonly outputPerMtok: number };
}

export interface MessageTemplate {
  readonly role: "system" | "user" | "assistant";
  readonly template: CompiledTemplate;
}

interface StepBase {
  readonly id: string;
  readonly index: number;
  /** Hash of the step's own definition (templates, options, effective model): what `--explain` compares. */
  readonly defHash: string;
}

export interface GenerateStep extends StepBase {
  readonly kind: "generate";
  readonly messages: MessageTemplate[];
  readonly model: ModelConfig;
  readonly jsonSchema?: Record<string, unknown>;
}

export interface FilterStep extends StepBase {
  readonly kind: "filter";
  readonly field: string;
  readonly minChars?: number;
  readonly maxChars?: number;
  readonly mustMatch: RegExp[];
  readonly mustNotMatch: RegExp[];
  readonly dropTruncated: boolean;
}

export interface MapStep extends StepBase {
  readonly kind: "map";
  readonly field: string;
  readonly extract?: "json" | "fenced";
  readonly replace: { pattern: RegExp; with: string }[];
  readonly trim: boolean;
}

export interface DedupeStep extends StepBase {
  readonly kind: "dedupe";
  readonly field: string;
  /** Near-duplicate detection; absent for exact dedupe. */
  readonly minhash?: { readonly threshold: number; readonly shingle: number };
  readonly ignoreCase: boolean;
  readonly ignoreWhitespace: boolean;
}

/** What a run step's module returns: the step's text, or a request to drop the sample. */
export type RunResult = string | { drop: string };
export type RunFunction = (vars: Readonly<Record<string, unknown>>) => RunResult | Promise<RunResult>;

export interface RunStep extends StepBase {
  readonly kind: "run";
  /** As written, relative to the manifest. */
  readonly module: string;
  readonly fn: RunFunction;
}

export type Step = GenerateStep | FilterStep | MapStep | DedupeStep | RunStep;

export type OutputFormat = "openai-chat" | "prompt-completion" | "jsonl" | "files";

export interface Output {
  /** As written in the manifest (relative to it): what reports and the lock show. */
  readonly path: string;
  readonly absPath: string;
  readonly format: OutputFormat;
  readonly system?: CompiledTemplate;
  readonly prompt?: CompiledTemplate;
  readonly completion?: CompiledTemplate;
  readonly record?: ReadonlyArray<readonly [string, CompiledTemplate]>;
  readonly name?: CompiledTemplate;
  readonly split?: ReadonlyArray<readonly [string, number]>;
}

export type Match = ReadonlyMap<string, ReadonlySet<string>>;

export interface Combine {
  readonly mode: "product" | "sample" | "zip" | "pairwise";
  readonly n?: number;
  readonly exclude: Match[];
  readonly repeat: number;
}

export interface Manifest {
  /** Absolute path of dataset.yaml, and the folder everything else is relative to. */
  readonly file: string;
  readonly dir: string;
  readonly name: string;
  readonly seed: number;
  readonly dimensions: Dimension[];
  readonly combine: Combine;
  readonly steps: Step[];
  readonly outputs: Output[];
  /** `cache:`: the remote cache, if one is configured (a folder path already absolute). */
  readonly cache?: CacheSettings;
  /** Everything the manifest was made from: what a build's up-to-date stamp checks. */
  readonly inputs: ManifestInputs;
}

export interface ManifestInputs {
  /** Absolute path → hash64 of the text read: the manifest, values files, globbed files, run modules. */
  files: Record<string, string>;
  /** Each glob as run: pattern, folder, and the sorted files it matched. */
  globs: { pattern: string; cwd: string; matches: string[] }[];
  /** Environment variables that ${VAR} looked up. */
  env: Set<string>;
  /** The URLs run modules were imported from: whether they still load depends on their imports too. */
  modules: string[];
}

export interface CacheSettings {
  readonly remote: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly pathStyle?: boolean;
}
