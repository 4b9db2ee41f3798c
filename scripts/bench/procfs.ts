/** What Linux's /proc says about CPU time and memory, for honest accounting on a shared machine. */
import { readFileSync } from 'node:fs';

/** A field of /proc/<pid>/status (VmHWM = peak resident set, VmRSS = current), in MB. */
export function procStatusMb(pid: number | 'self', field: 'VmHWM' | 'VmRSS'): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
  return match ? Number(match[1]) / 1024 : NaN;
}

/** CPU time (user + system, all threads) a process has used so far, in ms. */
export function procCpuMs(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name: state is field 3, utime 14, stime 15; ticks of 1/100 s (CLK_TCK).
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** CPU time the whole machine has been busy (everything but idle and iowait, steal included), in ms. */
export function machineBusyMs(): number {
  const fields = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = fields;
  return (user + nice + system + irq + softirq + (steal ?? 0)) * 10;
}

/**
 * Measures how many cores processes other than `pids` kept busy over an interval:
 * start() before, cores() after.
 */
export class OtherLoad {
  private busy = 0;
  private own = 0;
  private start = 0;
  constructor(private readonly pids: readonly (number | 'self')[]) {}

  private ownMs(): number {
    return this.pids.reduce((n: number, pid) => n + procCpuMs(pid), 0);
  }

  begin(): this {
    this.busy = machineBusyMs();
    this.own = this.ownMs();
    this.start = performance.now();
    return this;
  }

  /** { cores used by others, cores used by `pids` } since begin(). */
  end(): { other: number; own: number; ownMs: number } {
    const wall = performance.now() - this.start;
    const ownMs = this.ownMs() - this.own;
    const otherMs = Math.max(0, machineBusyMs() - this.busy - ownMs);
    return { other: otherMs / wall, own: ownMs / wall, ownMs };
  }
}
