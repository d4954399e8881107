// Preloaded into the CLI by `npm run bench -- transport`: the process's own CPU time and peak
// RSS, read where they are exact (at exit, over all its threads), written where the bench reads.
import { writeFileSync } from "node:fs";

const file = process.env.BENCH_USAGE_FILE;
if (file) {
  process.on("exit", () => {
    const u = process.resourceUsage();
    writeFileSync(
      file,
      JSON.stringify({ cpuS: (u.userCPUTime + u.systemCPUTime) / 1e6, userS: u.userCPUTime / 1e6, sysS: u.systemCPUTime / 1e6, maxRssMb: u.maxRSS / 1024 }),
    );
  });
}
