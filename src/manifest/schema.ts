import * as z from "zod";
import { LICENSE_ID, LICENSE_MESSAGE } from "./license.js";

/**
 * The one schema of dataset.yaml (version 1). Validation, the TypeScript types of the raw manifest
 * and the published JSON Schema (schema/dataset.schema.json) all come from here.
 */

export const UNKNOWN_KEY_TAG = "unknown-key:";

/**
 * A strict object whose "unknown key" issue carries the keys it knows, so that the diagnostic can
 * say "did you mean". The known keys travel in the message; validate.ts decodes them.
 */
function strict<T extends z.core.$ZodLooseShape>(shape: T) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss) => (iss.code === "unrecognized_keys" ? `${UNKNOWN_KEY_TAG}${JSON.stringify(known)}` : undefined),
  });
}

/** The variables every template can read besides dimensions and steps. */
export const BUILTIN_NAMES: readonly string[] = ["nonce", "index", "id"];
/**
 * Names of JavaScript objects' own machinery: never a variable (a scope keyed by one would read
 * or replace the object's prototype), so never a dimension or step either.
 */
export const UNUSABLE_NAMES: readonly string[] = ["__proto__", "constructor", "prototype"];
const RESERVED = [...BUILTIN_NAMES, ...UNUSABLE_NAMES];

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/**
 * Far more than any dataset's prompts can use, and few enough that nothing downstream (the
 * product's recursion, one lock line per sample holding every value) strains.
 */
export const MAX_DIMENSIONS = 1000;
const STEP_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export const STEP_KINDS = ["generate", "filter", "map", "dedupe", "run"] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/**
 * The zod schemas, built on first use (validation, the JSON Schema): building them is a few ms of
 * every command's start-up, which --help and a no-op build (checked without reading the
 * manifest) do not need.
 */
function buildSchemas() {
  const Scalar = z.union([z.string(), z.number(), z.boolean()]);

  const ModelParams = strict({
    temperature: z.number().min(0).max(2).optional(),
    top_p: z.number().min(0).max(1).optional(),
    max_tokens: z.number().int().positive().optional(),
    max_completion_tokens: z.number().int().positive().optional(),
    seed: z.number().int().optional(),
    stop: z.union([z.string(), z.array(z.string()).max(4)]).optional(),
    presence_penalty: z.number().min(-2).max(2).optional(),
    frequency_penalty: z.number().min(-2).max(2).optional(),
    reasoning_effort: z.enum(["minimal", "low", "medium", "high"]).optional(),
  }).describe("Generation parameters sent with every request; all of them are part of the cache key.");

  const Price = strict({
    input_per_mtok: z.number().nonnegative().describe("USD per million input tokens"),
    output_per_mtok: z.number().nonnegative().describe("USD per million output tokens"),
  });

  /**
   * Checked after ${VAR} interpolation; editors see the raw text, so the published pattern lets a
   * `${...}` through for the loader to check.
   */
  const BaseUrl = z
    .string()
    .refine((u) => u === "" || (/^https?:\/\/[^\s/?#]+\S*$/i.test(u) && URL.canParse(u)), "base_url is not an http(s) URL")
    .meta({ pattern: "^(?:[hH][tT][tT][pP][sS]?://[^\\s/?#]+\\S*|\\$\\{.*)?$", description: "Endpoint URL (http or https); empty = the provider's default" });

  /** One replica of `model.endpoints`: its own address, limits and credentials; the rest is the model's. */
  const Replica = z.union([
    BaseUrl,
    strict({
      base_url: BaseUrl.describe("This replica's endpoint URL (http or https)"),
      concurrency: z.number().int().min(1).max(4096).optional().describe("Requests in flight at this replica (default: the model's concurrency)"),
      rpm: z.number().positive().optional().describe("This replica's requests-per-minute limit (default: the model's)"),
      tpm: z.number().positive().optional().describe("This replica's tokens-per-minute limit (default: the model's)"),
      api_key_env: z.string().regex(ENV_NAME).optional().describe("Environment variable holding this replica's API key (default: the model's)"),
      headers: z.record(z.string(), z.string()).optional().describe("Extra HTTP headers for this replica, over the model's"),
    }),
  ]);

  const Model = strict({
    provider: z.enum(["openai", "ollama", "echo"]).optional().describe("openai = any OpenAI-compatible endpoint; echo = offline"),
    name: z.string().min(1).optional().describe("Model name as the endpoint knows it"),
    base_url: BaseUrl.optional(),
    endpoints: z
      .array(Replica)
      .min(1)
      .optional()
      .describe(
        "Replicas serving the same model, instead of base_url: each a URL, or { base_url, concurrency, rpm, tpm, api_key_env, headers } of its own. Requests go to the least loaded; one that fails or is down is taken out and tried again later. With more than one, endpoint_id is required: it names the group in the cache, so adding or removing a replica changes no answer's key",
      ),
    endpoint_id: z
      .string()
      .min(1)
      .optional()
      .describe(
        "Who answers, as far as the cache is concerned (default: the base_url). Answers are tied to the endpoint that gave them; endpoints that serve the same model the same way (replicas, a gateway in front of the provider) share answers by naming the same endpoint_id",
      ),
    api: z
      .enum(["chat", "completions"])
      .optional()
      .describe(
        "chat (default): /chat/completions with messages; completions: /completions with one prompt string, for base models (a step's prompt: alone, no system: or json_schema:)",
      ),
    api_key_env: z.string().regex(ENV_NAME).optional().describe("Environment variable holding the API key (default OPENAI_API_KEY)"),
    headers: z.record(z.string(), z.string()).optional().describe("Extra HTTP headers (not part of the cache key)"),
    extra_body: z.record(z.string(), z.unknown()).optional().describe("Extra request body fields (part of the cache key)"),
    params: ModelParams.optional(),
    concurrency: z.number().int().min(1).max(4096).optional(),
    rpm: z.number().positive().optional().describe("Client-side requests-per-minute limit"),
    tpm: z.number().positive().optional().describe("Client-side tokens-per-minute limit"),
    timeout_s: z
      .number()
      .positive()
      .optional()
      .describe(
        "Per attempt: seconds to wait for the answer to arrive (default 120). A chat completion that is not streamed sends nothing until it is complete, so this is also the first-byte timeout; an attempt that exceeds it is abandoned and retried",
      ),
    total_timeout_s: z
      .number()
      .positive()
      .optional()
      .describe(
        "Per request, over all its attempts: seconds it may wait for answers in total (default 3 × timeout_s); waits between attempts and for rate limits do not count. Then the sample fails",
      ),
    retries: z.number().int().min(0).max(100).optional().describe("Attempts after the first, for failures that may pass (default 6)"),
    price: Price.optional().describe("Overrides the built-in price table for cost estimates"),
    mode: z
      .enum(["direct", "batch", "auto"])
      .optional()
      .describe(
        "direct (default): one request per answer; batch: a step's missing answers go to the endpoint's Batch API as JSONL files, at the batch price (half the list price), answered within 24 h; auto: batch when a step needs more than batch_above requests. Not part of the cache key: an answer is the same whichever way it was asked for",
      ),
    batch_above: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe("With mode: auto: a step that needs more than this many requests in a build sends them as a batch (default 1000)"),
  })
    .describe("Model defaults; a generate step may override any field.")
    .meta({ not: { required: ["base_url", "endpoints"] } });

  const WeightedValue = strict({
    value: Scalar,
    weight: z.number().positive().optional(),
  });
  const ValueItem = z.union([Scalar, WeightedValue]);
  // The loader says "empty dimension" itself; the published schema says it too (as below, wherever
  // JSON Schema can say what the loader checks: `meta` keys are emitted as written).
  const ValueList = z.array(ValueItem).meta({ minItems: 1 });

  const FileDimension = strict({
    file: z.string().min(1).describe("A text file: one value a line; blank lines and # comments skipped"),
  });
  const GlobDimension = strict({
    glob: z.string().min(1).describe("One value per matched file: its text; the file's name is <dimension>_name"),
  });
  const RowsDimension = strict({
    rows: z
      .string()
      .min(1)
      .describe(
        "A table, one value a row: .csv (a header row names the columns) or .jsonl (one object a line). Templates read a column as {{ dimension.column }}",
      ),
    key: z
      .string()
      .min(1)
      .optional()
      .describe("The column that identifies a row (default: the row's whole content). With a key, editing a row keeps its sample ids"),
  });
  const ConditionalDimension = strict({
    by: z.string().regex(NAME).describe("The dimension this one depends on"),
    values: z.record(z.string(), ValueList).describe("Values for each value of the parent dimension"),
    default: ValueList.optional().describe("Values for parent values not listed"),
  });

  const Dimension = z.union([ValueList, FileDimension, GlobDimension, RowsDimension, ConditionalDimension]);

  const Match = z.record(z.string(), z.union([Scalar, z.array(Scalar)])).meta({ minProperties: 1 });

  const Combine = strict({
    mode: z.enum(["product", "sample", "zip", "pairwise"]).optional(),
    n: z.number().int().positive().optional().describe("With mode: sample, how many combinations"),
    exclude: z.array(Match).optional().describe("Combinations to leave out; each entry matches on the dimensions it names"),
    repeat: z.number().int().min(1).max(100000).optional().describe("Samples per combination, each with its own nonce"),
  }).meta({
    dependentSchemas: { n: { required: ["mode"], properties: { mode: { const: "sample" } } } },
    anyOf: [{ not: { required: ["mode"], properties: { mode: { const: "sample" } } } }, { required: ["n"] }],
  });

  const Target = strict({
    // minimum only in the JSON Schema (for editors): resolve-target.ts says why, with a hint.
    rows: z
      .number()
      .int()
      .meta({ minimum: 1 })
      .describe("Rows wanted after every filter and dedupe: candidates are added, as further repeats, until this many survive"),
    max_candidates: z
      .number()
      .int()
      .meta({ minimum: 1 })
      .optional()
      .describe("Most candidates (samples) to try before giving up short of rows (default: 4 × rows)"),
  }).describe("Exactly N rows: top up with new repeats until target.rows survive the steps, or max_candidates are spent");

  const Message = strict({
    role: z.enum(["system", "user", "assistant"]),
    content: z.string(),
  });

  const GenerateStep = strict({
    prompt: z.string().optional().describe("A template sent as one user message"),
    system: z.string().optional().describe("A system message template (with prompt)"),
    messages: z.array(Message).min(1).optional(),
    model: Model.optional(),
    json_schema: z.record(z.string(), z.unknown()).optional().describe("Structured output: the answer must be JSON valid against this schema"),
    on_empty: z
      .enum(["drop", "retry"])
      .optional()
      .describe("An empty answer: drop the sample (the default; the answer is cached) or ask again (up to model.retries, then the sample fails)"),
  }).meta({ oneOf: [{ required: ["prompt"] }, { required: ["messages"] }], dependentRequired: { system: ["prompt"] } });

  const Regex = z.string().meta({ format: "regex" });
  const Patterns = z.union([Regex, z.array(Regex)]);

  const FilterStep = strict({
    field: z.string().min(1).optional().describe("The step output or dimension that min_chars, max_chars, must_match, must_not_match and drop_truncated test"),
    where: z
      .string()
      .min(1)
      .optional()
      .describe('A condition the sample must meet, e.g. "judge.score >= 4 and len(story) > 200" (filtrex syntax; name.field reads a JSON answer\'s field)'),
    min_chars: z.number().int().nonnegative().optional(),
    max_chars: z.number().int().positive().optional(),
    must_match: Patterns.optional().describe("Regular expression(s) that must all match"),
    must_not_match: Patterns.optional().describe("Regular expression(s) none of which may match"),
    drop_truncated: z.boolean().optional().describe("Drop answers cut off by max_tokens"),
  });

  const MapStep = strict({
    field: z.string().min(1),
    extract: z.enum(["json", "fenced"]).optional().describe("Keep only the first JSON value or fenced code block"),
    replace: z
      .array(
        strict({
          pattern: Regex,
          with: z.string(),
          flags: z
            .string()
            .regex(/^(?!.*(.).*\1)[imsu]*$/, "flags are some of i, m, s, u, each at most once")
            .optional(),
        }),
      )
      .optional(),
    trim: z.boolean().optional(),
  });

  const MINHASH = { required: ["method"], properties: { method: { const: "minhash" } } };

  const DedupeStep = strict({
    field: z.string().min(1),
    method: z.enum(["exact", "minhash"]).optional().describe("exact: equal after normalising; minhash: near-duplicates by word n-gram similarity"),
    threshold: z.number().gt(0).max(1).optional().describe("minhash: estimated Jaccard similarity at which two texts are duplicates (default 0.85)"),
    shingle: z.number().int().min(1).max(20).optional().describe("minhash: words per n-gram (default 3)"),
    ignore_case: z.boolean().optional(),
    ignore_whitespace: z.boolean().optional(),
  }).meta({ dependentSchemas: { threshold: MINHASH, shingle: MINHASH } });

  const RunStep = strict({
    module: z
      .string()
      .min(1)
      .describe(
        "A JavaScript module (.js/.mjs) whose default export takes the sample's variables and returns text, or { drop: reason }; it and every local file it imports are its identity",
      ),
    timeout_s: z
      .number()
      .positive()
      .max(86_400)
      .optional()
      .describe("Seconds one call (and the module's first load) may take; a call that takes longer fails its sample (default 30)"),
  });

  const Step = strict({
    id: z
      .string()
      .regex(STEP_ID, "a step id is a name: letters, digits, _ and -, starting with a letter")
      .meta({ not: { enum: RESERVED } }),
    generate: GenerateStep.optional(),
    filter: FilterStep.optional(),
    map: MapStep.optional(),
    dedupe: DedupeStep.optional(),
    run: RunStep.optional(),
  }).meta({ oneOf: STEP_KINDS.map((k) => ({ required: [k] })) });

  const Output = strict({
    path: z
      .string()
      .min(1)
      // Outside the project or git's folder (as the loader says); the project folder itself only for format: files.
      .meta({ description: "Output file (a folder for format: files)", not: { pattern: "^(?:\\.\\.(?:[/\\\\]|$)|(?:\\./)?\\.git(?:[/\\\\]|$))" } }),
    format: z.enum(["openai-chat", "prompt-completion", "jsonl", "files"]).optional(),
    system: z.string().optional().describe("System message template (openai-chat)"),
    prompt: z.string().optional().describe("Prompt template"),
    completion: z.string().optional().describe("Completion template"),
    record: z.record(z.string(), z.string()).optional().describe("Field templates (format: jsonl)"),
    name: z.string().optional().describe("File name template (format: files)"),
    split: z
      .object({
        group_by: z
          .array(z.string())
          .min(1)
          .optional()
          .describe("Dimensions whose samples stay together: every sample with the same values of these lands in the same split"),
      })
      .catchall(z.number().positive())
      .meta({ propertyNames: { pattern: NAME.source }, minProperties: 1 })
      .optional()
      .describe("Fractions of combinations (or of group_by's values), e.g. {train: 0.9, validation: 0.1}"),
    card: z
      .boolean()
      .optional()
      .describe("Describe this output in the Hugging Face dataset card (README.md in the outputs' folder); default true (JSONL formats only)"),
  }).meta({
    anyOf: [
      { required: ["format", "record"], properties: { format: { const: "jsonl" } } },
      { required: ["prompt", "completion"], properties: { format: { not: { const: "jsonl" } } } },
    ],
    dependentSchemas: {
      record: { required: ["format"], properties: { format: { const: "jsonl" } } },
      system: { properties: { format: { const: "openai-chat" } } },
      name: { required: ["format"], properties: { format: { const: "files" } } },
      card: { properties: { format: { not: { const: "files" } } } },
    },
    // The project folder itself only for format: files, whose path never names prompts/ or completions/ (nesting them).
    allOf: [
      {
        anyOf: [
          { required: ["format"], properties: { format: { const: "files" }, path: { not: { pattern: "(?:^|[/\\\\])(?:prompts|completions)[/\\\\]?$" } } } },
          { properties: { format: { not: { const: "files" } }, path: { not: { pattern: "^\\.?/?$" } } } },
        ],
      },
    ],
  });

  const CacheSettings = strict({
    remote: z.string().min(1).describe("Where answers are shared: s3://bucket/prefix, file:///path, or a folder (relative to the manifest)"),
    endpoint: z.string().optional().describe("S3-compatible endpoint URL (MinIO, R2, Ceph), e.g. http://127.0.0.1:9000"),
    region: z.string().optional().describe("S3 region (default: AWS_REGION, else us-east-1)"),
    path_style: z.boolean().optional().describe("Path-style S3 URLs (default: true when endpoint is set)"),
  }).describe("A remote cache that push, pull and builds share; credentials come from the AWS credential chain, never from here.");

  const Card = strict({
    license: z
      .string()
      .regex(LICENSE_ID, LICENSE_MESSAGE)
      .optional()
      .describe(
        "The dataset's license in the card's front matter: a Hugging Face license id such as mit, apache-2.0, cc-by-4.0, or other (default: other, marked as a placeholder). Only the card reads it: changing it rewrites the card and requests nothing",
      ),
  }).describe("The Hugging Face dataset card that build writes (README.md beside the JSONL outputs)");

  const ManifestSchema = strict({
    $schema: z.string().optional(),
    version: z.literal(1),
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, "a name of letters, digits, '.', '_' and '-'"),
    seed: z.number().int().optional(),
    shared_data: z
      .array(z.string().min(1))
      .optional()
      .describe("Folders outside the project that file: and glob: may read (relative to the manifest, or absolute); nothing else outside it is read"),
    model: Model.optional(),
    dimensions: z.record(z.string(), Dimension).meta({
      minProperties: 1,
      maxProperties: MAX_DIMENSIONS,
      propertyNames: { type: "string", pattern: NAME.source, not: { enum: RESERVED } },
    }),
    combine: Combine.optional(),
    target: Target.optional(),
    steps: z.array(Step).optional(),
    output: z.union([Output, z.array(Output).min(1)]),
    cache: CacheSettings.optional(),
    card: Card.optional(),
  });

  return { ManifestSchema, Model, Replica, Step, Output, Dimension, ValueItem, Match };
}

type Schemas = ReturnType<typeof buildSchemas>;
let schemas: Schemas | undefined;

/** The schema of dataset.yaml. */
export function manifestSchema(): Schemas["ManifestSchema"] {
  schemas ??= buildSchemas();
  return schemas.ManifestSchema;
}

export type RawManifest = z.infer<Schemas["ManifestSchema"]>;
export type RawModel = z.infer<Schemas["Model"]>;
export type RawReplica = z.infer<Schemas["Replica"]>;
export type RawStep = z.infer<Schemas["Step"]>;
export type RawOutput = z.infer<Schemas["Output"]>;
export type RawDimension = z.infer<Schemas["Dimension"]>;
export type RawValueItem = z.infer<Schemas["ValueItem"]>;
export type RawMatch = z.infer<Schemas["Match"]>;

export { NAME as NAME_PATTERN };

export function manifestJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(manifestSchema(), { io: "input", unrepresentable: "any" }) as Record<string, unknown>;
  return {
    ...schema,
    $id: "https://synthbuild.dev/schema/dataset.schema.json",
    title: "synthbuild dataset.yaml",
  };
}
