import { readFileSync } from 'node:fs';

// Readings of a child process from Linux's /proc, for the servers the bench starts.

/** USER_HZ: the unit of CPU times in /proc on Linux. */
const CLOCK_TICKS_PER_SECOND = 100;

/** Resident set size of process `pid` (all its threads and native memory), in MiB. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1]) / 1024;
}

/**
 * User + system CPU time in a /proc stat file, in ms: `/proc/<pid>/stat` for a whole process,
 * `/proc/<pid>/task/<tid>/stat` for one thread.
 */
export function statCpuMs(statFile: string): number {
  // fields after the parenthesised command: state is field 3, utime 14, stime 15
  const stat = readFileSync(statFile, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
}
