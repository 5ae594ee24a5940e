/** Statistics shared by the benchmarks. */
import fs from 'node:fs';

/** The p-th percentile of ascending `sorted` values. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

export function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export function fmt(n: number, digits = 0): string {
  return Number.isFinite(n) ? n.toFixed(digits) : '-';
}

/** Busy and total jiffies of the whole machine (/proc/stat), or null where there is none. */
export function machineJiffies(): { busy: number; total: number } | null {
  try {
    const cpu = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.reduce((a, b) => a + b, 0);
    // not busy here: idle, iowait and steal (time the hypervisor gave to others)
    const notBusy = cpu[3] + (cpu[4] ?? 0) + (cpu[7] ?? 0);
    return { busy: total - notBusy, total };
  } catch {
    return null;
  }
}

/** The unit of /proc's CPU times: USER_HZ on Linux. */
const TICKS_PER_SECOND = 100;

/** Busy CPU time of the whole machine between two readings of machineJiffies, in µs (NaN without /proc/stat). */
export function machineBusyUs(before: ReturnType<typeof machineJiffies>, after: ReturnType<typeof machineJiffies>): number {
  return before && after ? ((after.busy - before.busy) / TICKS_PER_SECOND) * 1e6 : NaN;
}

/** User and system CPU of these processes so far (/proc/<pid>/stat), µs. */
export function processesCpuUs(pids: number[]): number {
  let ticks = 0;
  for (const pid of pids) {
    // the fields after the command name (which may hold spaces): utime and stime are the 12th and 13th
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return (ticks / TICKS_PER_SECOND) * 1e6;
}
