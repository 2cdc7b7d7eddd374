/**
 * The benchmark's `/proc` sampler: a process's resident memory and CPU time, and CPU use
 * between two samples. Linux only.
 *
 * @module
 */

/** One reading of a process. */
export interface ProcSample {
  /** VmRSS, KiB (NaN when the kernel does not say). */
  rssKiB: number;
  /** utime + stime, clock ticks. */
  ticks: number;
  /** When, `performance.now()` ms. */
  at: number;
}

/** Ticks per second when `getconf CLK_TCK` cannot say (Linux's value). */
const DEFAULT_CLK_TCK = 100;

let clk = 0;

/**
 * Clock ticks per second of `/proc/PID/stat` times (`getconf CLK_TCK`, asked once).
 *
 * @returns ticks per second
 */
export function clockTicks(): number {
  if (clk) return clk;
  try {
    const o = new Deno.Command("getconf", { args: ["CLK_TCK"], stderr: "null" }).outputSync();
    clk = Number(new TextDecoder().decode(o.stdout).trim()) || DEFAULT_CLK_TCK;
  } catch {
    clk = DEFAULT_CLK_TCK;
  }
  return clk;
}

/**
 * utime + stime of a process, in ticks.
 *
 * @param pid the process
 * @returns the ticks, or 0 when it is gone
 */
export function cpuTicks(pid: number): number {
  let stat: string;
  try {
    stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch {
    return 0;
  }
  // Fields after the command name (which may hold spaces): state is field 3, so utime
  // (field 14) and stime (15) are the 12th and 13th after it.
  const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return rest.length > 12 ? Number(rest[11]) + Number(rest[12]) : 0;
}

/**
 * CPU seconds processes have used (utime + stime); gone ones count 0.
 *
 * @param pids the processes
 * @returns seconds
 */
export function cpuSeconds(...pids: number[]): number {
  return pids.reduce((sum, pid) => sum + cpuTicks(pid), 0) / clockTicks();
}

/**
 * Read a process's RSS and CPU time.
 *
 * @param pid the process
 * @returns the sample
 * @throws {Deno.errors.NotFound} when it is gone
 */
export function sampleProc(pid: number): ProcSample {
  const status = Deno.readTextFileSync(`/proc/${pid}/status`);
  const ticks = cpuTicks(pid);
  return {
    rssKiB: Number(/VmRSS:\s*(\d+)/.exec(status)?.[1] ?? NaN),
    ticks,
    at: performance.now(),
  };
}

/**
 * CPU use between two samples of one process, one core = 100.
 *
 * @param a the earlier sample
 * @param b the later
 * @returns percent
 */
export function cpuPercent(a: ProcSample, b: ProcSample): number {
  return (b.ticks - a.ticks) / clockTicks() / ((b.at - a.at) / 1000) * 100;
}
