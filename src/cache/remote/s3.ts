import type { S3Client } from "@aws-sdk/client-s3";
import { KEY_FILE, objectPath, type Remote, RemoteAccessError, RemoteUnavailableError } from "./types.js";

export interface S3Location {
  bucket: string;
  /** "" or ending in "/". */
  prefix: string;
  endpoint?: string;
  region?: string;
  pathStyle?: boolean;
}

type Sdk = typeof import("@aws-sdk/client-s3");

/**
 * An S3-compatible bucket (AWS, MinIO, R2, Ceph...) through the AWS SDK v3 and its standard
 * credential chain (environment, shared config/profile, SSO, container and instance roles).
 * The SDK is loaded on first use: commands that never touch a bucket do not pay for it.
 * Errors are rewritten from their names and status codes only, never from the SDK's message,
 * which can quote a signature's credential scope.
 */
export class S3Remote implements Remote {
  private client?: Promise<{ sdk: Sdk; client: S3Client }>;

  constructor(
    readonly location: S3Location,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  get description(): string {
    const l = this.location;
    return `s3://${l.bucket}/${l.prefix}${l.endpoint ? ` at ${safeEndpoint(l.endpoint)}` : ""}`;
  }

  private connect(): Promise<{ sdk: Sdk; client: S3Client }> {
    this.client ??= (async () => {
      // The SDK warns on every Node 20 process that it will drop Node 20 next year: noise on a user's terminal.
      process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
      const mod = await import("@aws-sdk/client-s3");
      // The CLI's bundle gets the SDK's CommonJS build, whose exports arrive as `default`.
      const sdk = (mod.S3Client ? mod : (mod as unknown as { default: Sdk }).default) as Sdk;
      const l = this.location;
      const client = new sdk.S3Client({
        region: l.region ?? this.env.AWS_REGION ?? this.env.AWS_DEFAULT_REGION ?? "us-east-1",
        endpoint: l.endpoint,
        forcePathStyle: l.pathStyle ?? Boolean(l.endpoint),
        // sync.ts owns retries (with backoff, and a verdict the build can report); SDK retries would multiply them.
        maxAttempts: 1,
        // Many S3-compatible stores reject the SDK's newer default checksum headers; answers are validated on read anyway.
        requestChecksumCalculation: "WHEN_REQUIRED",
        responseChecksumValidation: "WHEN_REQUIRED",
        requestHandler: { connectionTimeout: 5_000, requestTimeout: 60_000 },
      });
      return { sdk, client };
    })();
    return this.client;
  }

  private keyOf(key: string): string {
    return `${this.location.prefix}${objectPath(key)}`;
  }

  async get(key: string): Promise<Uint8Array | undefined> {
    const { sdk, client } = await this.connect();
    try {
      const r = await client.send(new sdk.GetObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(key) }));
      return await r.Body!.transformToByteArray();
    } catch (err) {
      if (status(err) === 404 && name(err) !== "NoSuchBucket") return undefined;
      throw this.fail(err, `read ${key}`);
    }
  }

  async putIfAbsent(key: string, bytes: Uint8Array): Promise<"stored" | "exists"> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(
        new sdk.PutObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(key), Body: bytes, IfNoneMatch: "*", ContentType: "application/json" }),
      );
      return "stored";
    } catch (err) {
      // 412: someone stored this key first, and the first writer wins.
      if (status(err) === 412) return "exists";
      throw this.fail(err, `write ${key}`);
    }
  }

  async has(key: string): Promise<boolean> {
    const { sdk, client } = await this.connect();
    try {
      await client.send(new sdk.HeadObjectCommand({ Bucket: this.location.bucket, Key: this.keyOf(key) }));
      return true;
    } catch (err) {
      // HEAD has no body, so a missing bucket is a bare 404 too: list() is what tells them apart.
      if (status(err) === 404) return false;
      throw this.fail(err, `look up ${key}`);
    }
  }

  async list(): Promise<Set<string>> {
    const { sdk, client } = await this.connect();
    const keys = new Set<string>();
    const base = `${this.location.prefix}objects/`;
    let token: string | undefined;
    do {
      let page: import("@aws-sdk/client-s3").ListObjectsV2CommandOutput;
      try {
        page = await client.send(new sdk.ListObjectsV2Command({ Bucket: this.location.bucket, Prefix: base, ContinuationToken: token }));
      } catch (err) {
        throw this.fail(err, "list");
      }
      for (const o of page.Contents ?? []) {
        const file = o.Key?.slice(base.length + 3);
        if (file && KEY_FILE.test(file)) keys.add(file.slice(0, -5));
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  private fail(err: unknown, what: string): Error {
    const n = name(err);
    const s = status(err);
    const where = this.description;
    const why = `${n}${s ? `, HTTP ${s}` : ""}`;
    if (n === "CredentialsProviderError")
      return new RemoteAccessError(
        `no AWS credentials found for ${where}`,
        "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE (a profile in ~/.aws), or run where an instance or container role applies",
      );
    if (n === "NoSuchBucket")
      return new RemoteAccessError(`the bucket of ${where} does not exist`, "create it, or fix cache.remote (s3://BUCKET/prefix) and cache.endpoint");
    if (s === 401 || s === 403 || AUTH_ERRORS.has(n))
      return new RemoteAccessError(
        `${where} refused to ${what} (${why})`,
        "check the credentials (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE), that they may read and write this bucket and prefix, and cache.region / cache.endpoint",
      );
    if (s === undefined || s === 408 || s === 409 || s === 429 || s >= 500 || TRANSIENT_ERRORS.has(n))
      return new RemoteUnavailableError(`${where} is not reachable: could not ${what} (${why})`, "check cache.endpoint and the network; it is retried");
    return new RemoteAccessError(`${where} could not ${what} (${why})`, "check cache.remote, cache.endpoint, cache.region and cache.path_style");
  }
}

const AUTH_ERRORS = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "AccessDenied",
  "InvalidToken",
  "ExpiredToken",
  "TokenRefreshRequired",
  "AuthorizationHeaderMalformed",
  "InvalidClientTokenId",
]);
const TRANSIENT_ERRORS = new Set(["TimeoutError", "RequestTimeout", "SlowDown", "ServiceUnavailable", "InternalError", "ConditionalRequestConflict"]);

function name(err: unknown): string {
  return (err as { name?: string })?.name ?? "Error";
}

function status(err: unknown): number | undefined {
  return (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** An endpoint as printed: user info (credentials in a URL) dropped. */
function safeEndpoint(endpoint: string): string {
  try {
    const u = new URL(endpoint);
    u.username = "";
    u.password = "";
    return u.toString().replace(/\/$/, "");
  } catch {
    return "(an endpoint that is not a URL)";
  }
}
