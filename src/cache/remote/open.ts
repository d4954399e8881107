import { isAbsolute, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "../../errors.js";
import { DirectoryRemote } from "./directory.js";
import { S3Remote } from "./s3.js";
import type { Remote, RemoteSettings } from "./types.js";

/** The remote a `cache.remote` (or `--remote`) names: `s3://bucket/prefix`, `file:///path`, or a folder. */
export function openRemote(settings: RemoteSettings, baseDir: string, env: NodeJS.ProcessEnv = process.env): Remote {
  const url = settings.url.trim();
  if (url.startsWith("s3://")) {
    const rest = url.slice("s3://".length);
    const slash = rest.indexOf("/");
    const bucket = slash === -1 ? rest : rest.slice(0, slash);
    const prefix = slash === -1 ? "" : rest.slice(slash + 1).replace(/^\/+|\/+$/g, "");
    if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket))
      throw new UsageError(`'${bucket}' is not an S3 bucket name`, "write the remote as s3://BUCKET/optional/prefix");
    if (settings.endpoint !== undefined && !/^https?:\/\//.test(settings.endpoint))
      throw new UsageError("cache.endpoint must be an http:// or https:// URL", "e.g. endpoint: http://127.0.0.1:9000 for MinIO");
    return new S3Remote(
      { bucket, prefix: prefix ? `${prefix}/` : "", endpoint: settings.endpoint, region: settings.region, pathStyle: settings.pathStyle },
      env,
    );
  }
  if (url.startsWith("file://")) return new DirectoryRemote(fileURLToPath(url));
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url))
    throw new UsageError(`unsupported remote ${url.split("://")[0]}://`, "a remote is s3://bucket/prefix, file:///path, or a folder path");
  if (url === "") throw new UsageError("the remote is empty", "set cache.remote or --remote");
  return new DirectoryRemote(isAbsolute(url) ? url : resolve(baseDir, url));
}
