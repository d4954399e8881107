import type { CompiledTemplate } from "../template/engine.js";
import type { Where } from "../template/where.js";

/** The resolved manifest: every file read, every template compiled, every default applied. */

export interface DimValue {
  /** What identifies the value in sample ids: the text, or a glob value's file path. */
  readonly key: string;
  /** What templates see. */
  readonly text: string;
  readonly weight: number;
  /** A glob value's file name without extension (exposed as `<dimension>_name`). */
  readonly name?: string;
  /**
   * A rows dimension's row, column → value (text from CSV, any JSON value from JSONL); `text` is
   * then its canonical JSON, which is what recipes hash, so editing any column of a row is seen.
   */
  readonly row?: Readonly<Record<string, unknown>>;
}

export interface Dimension {
  readonly name: string;
  readonly kind: "list" | "file" | "glob" | "conditional" | "rows";
  /** All values (for a conditional dimension: the union over its parent's values). */
  readonly values: DimValue[];
  /** Conditional dimensions: the parent's name and the values under each parent value key. */
  readonly by?: string;
  readonly byValue?: ReadonlyMap<string, DimValue[]>;
  /** Rows dimensions: every column name (CSV: the header; JSONL: every key some row has). */
  readonly columns?: readonly string[];
  /** Rows dimensions: the line each value's row starts on, for diagnostics. */
  readonly rowLines?: readonly number[];
  /** Rows dimensions: the file, as written in the manifest. */
  readonly file?: string;
  /** Rows dimensions with `key:`: the column whose value identifies a row. */
  readonly keyColumn?: string;
}

export type ProviderKind = "openai" | "ollama" | "echo";

export interface ModelConfig {
  readonly provider: ProviderKind;
  readonly name: string;
  readonly baseUrl?: string;
  /**
   * Who answers, for the cache: part of every cache key, so an answer from one endpoint never
   * stands in for another's. The normalised base URL unless the manifest names an endpoint_id.
   */
  readonly endpoint: string;
  readonly apiKeyEnv: string;
  /** `api: completions`: the legacy /completions endpoint, a prompt string in, text out (base models). */
  readonly api?: "completions";
  readonly headers: Readonly<Record<string, string>>;
  readonly extraBody: Readonly<Record<string, unknown>>;
  readonly params: Readonly<Record<string, unknown>>;
  readonly concurrency: number;
  readonly rpm?: number;
  readonly tpm?: number;
  /** Per attempt. */
  readonly timeoutS: number;
  /** Per request, over all its attempts (time waiting on the endpoint only). */
  readonly totalTimeoutS: number;
  readonly retries: number;
  readonly price?: { readonly inputPerMtok: number; readonly outputPerMtok: number };
  /** How missing answers are asked for: absent, one request each; the Batch API; or batch above `batchAbove` requests a step (plan/batch-choice.ts). */
  readonly mode?: "batch" | "auto";
  readonly batchAbove?: number;
  /**
   * `model.endpoints:`: the replicas requests are spread over, each with its own address, limits
   * and key (`baseUrl`, `concurrency`... above are the first one's). Absent for one endpoint.
   * Never part of a cache key or a step's definition: `endpoint` names the group.
   */
  readonly replicas?: readonly ReplicaConfig[];
}

/** One replica of `model.endpoints:`, its model's settings applied where it sets none. */
export interface ReplicaConfig {
  readonly baseUrl: string;
  readonly concurrency: number;
  readonly rpm?: number;
  readonly tpm?: number;
  readonly apiKeyEnv: string;
  readonly headers: Readonly<Record<string, string>>;
}

export interface MessageTemplate {
  readonly role: "system" | "user" | "assistant";
  readonly template: CompiledTemplate;
}

export type StepParts = Readonly<Record<string, unknown>>;

interface StepBase {
  readonly id: string;
  readonly index: number;
  /** Hash of `parts`: the step's own definition. */
  readonly defHash: string;
  /**
   * The step's definition in parts a person edits (template hash, model, endpoint, params; a
   * filter's options...), recorded in the lock's header so that `plan --explain` and `diff` can
   * say which of them changed, not just that something did.
   */
  readonly parts: StepParts;
}

export interface GenerateStep extends StepBase {
  readonly kind: "generate";
  readonly messages: MessageTemplate[];
  readonly model: ModelConfig;
  readonly jsonSchema?: Record<string, unknown>;
  /** `on_empty: retry`: an empty answer is a failed attempt, not an answer. */
  readonly retryEmpty?: true;
  /**
   * Some template reads a field of the answer (`{{ q.title }}`): the answer is parsed for them.
   * Only then, so a manifest that reads just `{{ q }}` sees exactly the text it always did.
   */
  readonly parseAnswer?: true;
}

export interface FilterStep extends StepBase {
  readonly kind: "filter";
  /** What the text tests (min_chars...) read; absent for a filter with only `where`. */
  readonly field?: string;
  readonly where?: Where;
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

/**
 * A user's module, whose default export gets the sample's variables and returns the step's text
 * or `{ drop: "why" }`. It runs in a worker thread (execute/run-pool.ts), never in the build's.
 */
export interface RunStep extends StepBase {
  readonly kind: "run";
  /** As written, relative to the manifest. */
  readonly module: string;
  /** The file URL the worker imports. */
  readonly url: string;
  /** How long one call may take before it fails its sample and its worker is replaced. */
  readonly timeoutS: number;
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
  /** Described in the dataset card (output/card.ts): JSONL formats, unless `card: false`. */
  readonly card: boolean;
  /** `split.group_by`: samples equal in these dimensions share a split. */
  readonly groupBy?: { readonly names: readonly string[]; readonly indexes: readonly number[] };
}

export type Match = ReadonlyMap<string, ReadonlySet<string>>;

export interface Combine {
  readonly mode: "product" | "sample" | "zip" | "pairwise";
  readonly n?: number;
  readonly exclude: Match[];
  readonly repeat: number;
  /**
   * How sample and pairwise make their combinations, chosen at load from the space's size:
   * `enumerate` walks the product (the rules every manifest valid before spaces of a billion
   * was built with, so their samples stay as they were); `construct` never does (seeded draws
   * per candidate; IPOG), for spaces past what a walk can finish.
   */
  readonly method: "enumerate" | "construct";
}

/** `target:`: candidates (samples) are added in candidate order until `rows` survive the steps, or `maxCandidates` are spent. */
export interface Target {
  readonly rows: number;
  readonly maxCandidates: number;
}

export interface Manifest {
  /** Absolute path of dataset.yaml, and the folder everything else is relative to. */
  readonly file: string;
  readonly dir: string;
  readonly name: string;
  readonly seed: number;
  readonly dimensions: Dimension[];
  readonly combine: Combine;
  readonly target?: Target;
  readonly steps: Step[];
  readonly outputs: Output[];
  /** `cache:`: the remote cache, if one is configured (a folder path already absolute). */
  readonly cache?: CacheSettings;
  /** `card:`: what the dataset card takes from the manifest besides the name (output/card-text.ts); in no hash. */
  readonly card?: CardSettings;
  /** Everything the manifest was made from: what a build's up-to-date stamp checks. */
  readonly inputs: ManifestInputs;
}

export interface ManifestInputs {
  /**
   * Absolute path → hash64 of the text read: the manifest, values files, globbed files, run
   * modules with every local file they import and the package.json of each package they import.
   */
  files: Record<string, string>;
  /** Each glob as run: pattern, folder, the folders it may read (real paths), and the sorted files it matched. */
  globs: { pattern: string; cwd: string; roots: readonly string[]; matches: string[] }[];
  /** Environment variables that ${VAR} looked up. */
  env: Set<string>;
}

export interface CardSettings {
  /** A Hugging Face license id; unset, the card says `other` and that it is a placeholder. */
  readonly license?: string;
}

export interface CacheSettings {
  readonly remote: string;
  readonly endpoint?: string;
  readonly region?: string;
  readonly pathStyle?: boolean;
}
