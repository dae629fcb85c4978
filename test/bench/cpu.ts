/**
 * CPU time by process, read from /proc (Linux): where an exchange run's time goes. The
 * bench process (FR, and the calls it makes as the analyst), the DE gateway's process, and
 * PostgreSQL and Redis (every process of theirs: backends, WAL writer, …). Each process's
 * user + system time includes all its threads (Node's thread pool signs JWS).
 */
import { readdirSync, readFileSync } from 'node:fs';

export interface CpuSample {
  fr: number;
  de: number;
  postgres: number;
  redis: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ): 100 on every Linux Node runs on. */
const TICKS_PER_S = 100;

/** CPU seconds used so far, or undefined where /proc is not there (not Linux). */
export function cpuSample(dePid: number | undefined): CpuSample | undefined {
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((p) => /^\d+$/.test(p));
  } catch {
    return undefined;
  }
  const sample: CpuSample = { fr: 0, de: 0, postgres: 0, redis: 0 };
  for (const pid of pids) {
    const seconds = cpuSeconds(pid);
    if (seconds === 0) continue;
    if (pid === String(process.pid)) sample.fr += seconds;
    else if (pid === String(dePid)) sample.de += seconds;
    else {
      const comm = read(`/proc/${pid}/comm`).trim();
      // A backend that ended (a pooled connection closed when idle) took its time with it;
      // the postmaster, which reaped it, counts it among its children's.
      if (comm.startsWith('postgres')) sample.postgres += seconds + cpuSeconds(pid, true);
      else if (comm.startsWith('redis')) sample.redis += seconds;
    }
  }
  return sample;
}

/** Milliseconds of CPU per unit of work between two samples, by process. */
export function cpuMsPer(before: CpuSample, after: CpuSample, units: number): CpuSample {
  const per = (k: keyof CpuSample) => Math.round(((after[k] - before[k]) * 1000 * 100) / units) / 100;
  return { fr: per('fr'), de: per('de'), postgres: per('postgres'), redis: per('redis') };
}

/** The process's own user + system time, or (`children`) that of its ended, reaped children. */
function cpuSeconds(pid: string, children = false): number {
  const stat = read(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): state is field 3, utime 14,
  // stime 15, cutime 16, cstime 17.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const at = children ? 13 : 11;
  const ticks = Number(fields[at]) + Number(fields[at + 1]);
  return Number.isFinite(ticks) ? ticks / TICKS_PER_S : 0;
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return ''; // the process ended meanwhile
  }
}
