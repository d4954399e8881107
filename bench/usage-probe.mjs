// Preloaded into the CLI by `npm run bench -- transport`: the process's own CPU time and peak
// RSS, read where they are exact (at exit, over all its threads), written where the bench reads.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";

/**
 * CPU seconds of the main thread (the build's JavaScript, the SDK, HTTP) and of all the others
 * (V8's GC and compiler helpers, libuv's file-system pool, where a cache write's kernel work
 * lands), from /proc (Linux; absent elsewhere). Node 20 names every thread "node", so the
 * others cannot be told apart.
 */
function byThread() {
  const tick = 100;
  const out = { mainS: 0, otherS: 0 };
  try {
    for (const t of readdirSync("/proc/self/task")) {
      const st = readFileSync(`/proc/self/task/${t}/stat`, "utf8");
      const f = st.slice(st.lastIndexOf(")") + 2).split(" ");
      const cpu = (Number(f[11]) + Number(f[12])) / tick;
      if (Number(t) === process.pid) out.mainS += cpu;
      else out.otherS += cpu;
    }
  } catch {
    return undefined;
  }
  return out;
}

const file = process.env.BENCH_USAGE_FILE;
if (file) {
  process.on("exit", () => {
    const u = process.resourceUsage();
    writeFileSync(
      file,
      JSON.stringify({
        cpuS: (u.userCPUTime + u.systemCPUTime) / 1e6,
        userS: u.userCPUTime / 1e6,
        sysS: u.systemCPUTime / 1e6,
        maxRssMb: u.maxRSS / 1024,
        threads: byThread(),
      }),
    );
  });
}
