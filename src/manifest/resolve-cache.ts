import { isAbsolute, resolve } from "node:path";
import type { RawManifest } from "./schema.js";
import type { CacheSettings } from "./types.js";

/** `cache:` as later stages read it: a folder remote made absolute against the manifest's folder. */
export function resolveCache(raw: NonNullable<RawManifest["cache"]>, dir: string): CacheSettings {
  const url = raw.remote.trim();
  const folder = !/^[a-z][a-z0-9+.-]*:\/\//i.test(url);
  return {
    remote: folder && !isAbsolute(url) ? resolve(dir, url) : url,
    ...(raw.endpoint !== undefined && raw.endpoint !== "" && { endpoint: raw.endpoint }),
    ...(raw.region !== undefined && raw.region !== "" && { region: raw.region }),
    ...(raw.path_style !== undefined && { pathStyle: raw.path_style }),
  };
}
