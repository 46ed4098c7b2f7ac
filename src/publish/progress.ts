// Progress lines every few seconds while uploading: bytes on the server, percent, MiB/s in total and per channel
// since the attempt began, and the ETA at that rate.
import type { Reporter } from '../report/reporter.js';
import { formatBytes, formatDuration } from '../report/summary.js';

const MiB = 1024 * 1024;

export class Progress {
  /** Bytes written to the server over all attempts. */
  sent = 0;
  private done = 0;
  private firstStart = 0;
  private stoppedAt?: number;
  private timer?: ReturnType<typeof setInterval>;
  private perChannel: number[] = [];
  private attempt = { at: 0, sent: 0 };

  constructor(
    private readonly reporter: Reporter,
    private readonly total: number,
    private readonly intervalMs: number,
  ) {}

  /** An attempt begins with `onServer` bytes already there, written over `channels` channels. */
  start(onServer: number, channels: number): void {
    this.done = onServer;
    const now = Date.now();
    this.firstStart ||= now;
    this.stoppedAt = undefined;
    this.perChannel = new Array<number>(channels).fill(0);
    this.attempt = { at: now, sent: this.sent };
    if (!this.timer && this.intervalMs > 0) {
      this.timer = setInterval(() => this.line(), this.intervalMs);
      this.timer.unref();
    }
  }

  add(bytes: number, channel = 0): void {
    this.sent += bytes;
    this.done += bytes;
    this.perChannel[channel] = (this.perChannel[channel] ?? 0) + bytes;
  }

  /** Seconds spent uploading (from the first write to the end of the last attempt). */
  seconds(): number {
    return this.firstStart ? ((this.stoppedAt ?? Date.now()) - this.firstStart) / 1000 : 0;
  }

  line(): void {
    const elapsed = Math.max((Date.now() - this.attempt.at) / 1000, 0.001);
    const rate = (this.sent - this.attempt.sent) / elapsed;
    const channelRates = this.perChannel.map((b) => b / elapsed / MiB);
    const eta = rate > 0 ? (this.total - this.done) / rate : Infinity;
    const pct = this.total ? (100 * this.done) / this.total : 100;
    const channels = channelRates.length > 1 ? ` (${channelRates.length} channels: ${channelRates.map((r) => r.toFixed(1)).join(' + ')})` : '';
    this.reporter.info(
      `uploaded ${formatBytes(this.done)} of ${formatBytes(this.total)} (${pct.toFixed(1)}%), ${(rate / MiB).toFixed(1)} MiB/s${channels}, ETA ${Number.isFinite(eta) ? formatDuration(eta) : 'unknown'}`,
    );
  }

  stop(): void {
    this.stoppedAt ??= Date.now();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

/** The phases of a stage, in order; after a cut, `prepare` and `upload` are those of all attempts together. */
export type StagePhase = 'connect' | 'prepare' | 'upload' | 'verify' | 'rename' | 'release';

/** Ends a phase: tells `onPhase` the seconds since the last one ended, less `less` seconds counted elsewhere. */
export function phaseClock(onPhase?: (phase: StagePhase, seconds: number) => void): (name: StagePhase, less?: number) => void {
  let last = performance.now();
  return (name, less = 0) => {
    const now = performance.now();
    onPhase?.(name, (now - last) / 1000 - less);
    last = now;
  };
}
