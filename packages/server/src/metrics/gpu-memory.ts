import { execFile } from 'node:child_process';
import { Gauge } from 'prom-client';
import type { Registry } from 'prom-client';

// GPU memory in /metrics, read from nvidia-smi at a low rate (spawning it costs tens of ms of
// CPU, too much per scrape). Off for good once the executable is not found: hosts without an
// NVIDIA GPU (and CPU-only deployments) pay nothing after the first try.

const QUERY = ['--query-gpu=memory.used,memory.total', '--format=csv,noheader,nounits'];
const MIB = 1024 * 1024;

export interface GpuMemoryReading {
  readonly usedBytes: number;
  readonly totalBytes: number;
}

/** One line per GPU, "used, total" in MiB; lines that do not parse are skipped. */
export function parseNvidiaSmi(output: string): GpuMemoryReading[] {
  const readings: GpuMemoryReading[] = [];
  for (const line of output.split('\n')) {
    const parts = line.split(',').map((p) => p.trim());
    if (parts.length !== 2) continue;
    const [used, total] = parts.map(Number) as [number, number];
    if (!Number.isFinite(used) || !Number.isFinite(total)) continue;
    readings.push({ usedBytes: used * MIB, totalBytes: total * MIB });
  }
  return readings;
}

export interface GpuMemoryPollerOptions {
  readonly registry: Registry;
  /** 0 = off. */
  readonly intervalMs: number;
  readonly command?: string;
  readonly onUnavailable?: (reason: string) => void;
}

export class GpuMemoryPoller {
  private readings: GpuMemoryReading[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private stopped = false;
  private readonly command: string;

  constructor(private readonly options: GpuMemoryPollerOptions) {
    this.command = options.command ?? 'nvidia-smi';
    const readings = () => this.readings;
    new Gauge({
      name: 'magma_gpu_memory_used_bytes',
      help: 'GPU memory in use (all processes), per GPU, from nvidia-smi.',
      labelNames: ['gpu'] as const,
      registers: [options.registry],
      collect() {
        this.reset();
        readings().forEach((r, gpu) => this.set({ gpu: String(gpu) }, r.usedBytes));
      },
    });
    new Gauge({
      name: 'magma_gpu_memory_total_bytes',
      help: 'GPU memory in total, per GPU, from nvidia-smi.',
      labelNames: ['gpu'] as const,
      registers: [options.registry],
      collect() {
        this.reset();
        readings().forEach((r, gpu) => this.set({ gpu: String(gpu) }, r.totalBytes));
      },
    });
  }

  get enabled(): boolean {
    return !this.stopped;
  }

  /** Polls now and then every intervalMs until stop(); does nothing when intervalMs is 0. */
  start(): void {
    if (this.options.intervalMs <= 0) {
      this.stopped = true;
      return;
    }
    this.poll();
    this.timer = setInterval(() => this.poll(), this.options.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  private poll(): void {
    if (this.running || this.stopped) return; // a slow nvidia-smi never piles up
    this.running = true;
    execFile(this.command, QUERY, { timeout: 5_000, encoding: 'utf8' }, (error, stdout) => {
      this.running = false;
      if (this.stopped) return;
      if (error !== null) {
        // A stale reading would mislead more than a missing series.
        this.readings = [];
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
          // No NVIDIA driver tools here: no more tries.
          this.stop();
          this.options.onUnavailable?.(`${this.command} not found`);
        }
        return;
      }
      this.readings = parseNvidiaSmi(stdout);
    });
  }
}
