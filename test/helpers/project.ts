import type { Dirent } from "node:fs";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { storedKeys } from "./cache-files.js";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** A throwaway project folder with files defined inline. */
export class TempProject {
  private constructor(readonly dir: string) {}

  static async create(files: Record<string, string> = {}): Promise<TempProject> {
    const p = new TempProject(await mkdtemp(join(tmpdir(), "synthbuild-test-")));
    await p.write(files);
    return p;
  }

  /** The repository's example (dataset.yaml and its data/), as a user's copy of it. */
  static async example(): Promise<TempProject> {
    const p = await TempProject.create();
    await cp(join(REPO, "dataset.yaml"), join(p.dir, "dataset.yaml"));
    await cp(join(REPO, "data"), join(p.dir, "data"), { recursive: true });
    return p;
  }

  async write(files: Record<string, string>): Promise<void> {
    for (const [path, text] of Object.entries(files)) {
      await mkdir(dirname(join(this.dir, path)), { recursive: true });
      await writeFile(join(this.dir, path), text);
    }
  }

  read(path: string): Promise<string> {
    return readFile(join(this.dir, path), "utf8");
  }

  async exists(path: string): Promise<boolean> {
    return readFile(join(this.dir, path)).then(
      () => true,
      () => false,
    );
  }

  /** Every file under a folder, as relative path → content (for byte-identical comparisons). */
  async snapshot(sub = "dist"): Promise<Record<string, string>> {
    const out: Record<string, string> = {};
    const walk = async (rel: string) => {
      let entries: Dirent[];
      try {
        entries = await readdir(join(this.dir, rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const r = `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(r);
        else out[r] = await readFile(join(this.dir, r), "utf8");
      }
    };
    await walk(sub);
    return out;
  }

  /** Keys with a sound answer in the project's cache (packed or loose), sorted. */
  async cacheKeys(): Promise<string[]> {
    return storedKeys(join(this.dir, "cache"));
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
