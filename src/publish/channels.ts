// How many SFTP channels to write over, and opening them. One SSH channel carries at most its window per round
// trip: OpenSSH's sshd grants 2 MiB, so a 100 ms link moves about 20 MiB/s on one channel whatever its bandwidth.
// Several channels of one connection (OpenSSH allows `MaxSessions`, 10 by default) each get their own window; where
// the server allows fewer, further connections carry the rest. On loopback and LAN one channel is not window-bound,
// and more would only add work, so `auto` stays at one there.
import type { SFTPWrapper } from 'ssh2';
import type { Reporter } from '../report/reporter.js';
import { isNetworkError, type SftpConnection } from './connect.js';
import { sftpCall } from './remote.js';

/** `auto` or a fixed count. */
export type ChannelSetting = 'auto' | number;

export const MAX_CHANNELS = 16;
/** A hosted runner's link, assumed until an upload has measured one: 1 Gbit/s. */
const ASSUMED_LINK_BYTES_PER_SECOND = 125_000_000;
/** OpenSSH's session window (CHAN_SES_WINDOW_DEFAULT): the bytes one channel may have unacknowledged. */
export const CHANNEL_WINDOW = 2 * 1024 * 1024;

export interface ChannelChoice {
  channels: number;
  why: string;
}

/**
 * The channel count for a measured round trip. Below `minRttMs` the window does not bind (loopback, LAN): one.
 * Beyond it, enough windows in flight to fill `linkBytesPerSecond`: measured on an earlier attempt of this run, or
 * assumed 1 Gbit/s (a hosted runner's link) before anything was sent; at most `MAX_CHANNELS`, and never more than
 * there are 8 MiB pieces of the upload to share.
 */
export function chooseChannels(o: { setting: ChannelSetting; rttMs: number; linkBytesPerSecond?: number; bytes: number; minRttMs?: number; host?: string }): ChannelChoice {
  const pieces = Math.max(1, Math.ceil(o.bytes / (8 * 1024 * 1024)));
  if (o.setting !== 'auto') return { channels: Math.max(1, Math.min(o.setting, MAX_CHANNELS)), why: `sftp-channels: ${o.setting}` };
  const rtt = `round trip ${o.rttMs.toFixed(o.rttMs < 10 ? 1 : 0)} ms`;
  // A server on this machine has no window-bound link; a round trip measured there is only the machine's load.
  if (o.host !== undefined && isLoopbackHost(o.host)) return { channels: 1, why: `${rtt} to ${o.host} on this machine: one channel` };
  if (o.rttMs < (o.minRttMs ?? 5)) return { channels: 1, why: `${rtt}: one channel is not limited by its window` };
  const link = o.linkBytesPerSecond ?? ASSUMED_LINK_BYTES_PER_SECOND;
  // sshd tops a window up once half of it is used, so a channel has between half and all of it in flight: 3/4 on average.
  const perChannel = (CHANNEL_WINDOW * 0.75) / (o.rttMs / 1000);
  const wanted = Math.ceil(link / perChannel);
  const channels = Math.max(1, Math.min(wanted, MAX_CHANNELS, pieces));
  const linkText = o.linkBytesPerSecond ? `${((o.linkBytesPerSecond * 8) / 1e6).toFixed(0)} Mbit/s measured` : '1 Gbit/s assumed';
  return { channels, why: `${rtt}, one channel carries about ${(perChannel / 1048576).toFixed(0)} MiB/s, link ${linkText}` };
}

/**
 * SFTP write requests to keep in flight on each channel: enough to carry 1 Gbit/s over the round trip, from half a
 * channel window's worth to a whole one (more would only wait in the client's buffer). Half a window on short
 * links, so the sender does not run out of window: sshd sends its window adjustments as small packets without
 * TCP_NODELAY, held back until our delayed acknowledgement of the one before, and a sender waiting for them stalls
 * (on loopback, most of a second per upload; OpenSSH's own `sftp` with its 64 requests does the same).
 */
export function requestsInFlight(rttMs: number, chunk: number): number {
  const window = Math.ceil(CHANNEL_WINDOW / chunk);
  const wanted = Math.ceil((ASSUMED_LINK_BYTES_PER_SECOND * rttMs) / 1000 / chunk);
  return Math.max(Math.ceil(window / 2), Math.min(wanted, window));
}

/** `localhost`, 127.0.0.0/8 or ::1. */
export function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(host) || host === '::1' || host === '[::1]';
}

/** The round trip to the SFTP server: one request. */
export async function measureRtt(sftp: SFTPWrapper): Promise<number> {
  const t = process.hrtime.bigint();
  await sftpCall<string>((cb) => sftp.realpath('.', cb));
  return Number(process.hrtime.bigint() - t) / 1e6;
}

export interface Channels {
  sftps: SFTPWrapper[];
  /** Connections opened for channels the first one's server refused; ended by `close`. */
  extra: SftpConnection[];
  /** Resolves when any connection carrying a channel closes. */
  closed: Promise<void>;
  close(): Promise<void>;
}

/**
 * Opens `n` SFTP channels: the connection's own, more sessions on it, and further connections for what the server
 * refuses (`MaxSessions`), saying which. Refused sessions and failed extra connections lower the count; never below one.
 */
export async function openChannels(conn: SftpConnection, n: number, connect: () => Promise<SftpConnection>, reporter: Reporter): Promise<Channels> {
  // Those opened with the connection first (a long link's, see `ConnectOptions.sessions`); where the server refused
  // one of them, asking again on this connection would only be refused again.
  const spare = await conn.takeSpare(n - 1);
  const sftps: SFTPWrapper[] = [conn.sftp, ...spare.sftps];
  const extra: SftpConnection[] = [];
  let refused: unknown = spare.refused;
  if (refused === undefined) {
    const more = await Promise.allSettled(Array.from({ length: n - sftps.length }, () => conn.openSftp()));
    for (const r of more) {
      if (r.status === 'fulfilled') sftps.push(r.value);
      else refused ??= r.reason;
    }
  }
  if (refused !== undefined && isNetworkError(refused)) throw refused;
  const missing = n - sftps.length;
  if (missing > 0) {
    const reason = String((refused as Error)?.message ?? refused);
    const conns = await Promise.allSettled(Array.from({ length: missing }, () => connect()));
    for (const r of conns) if (r.status === 'fulfilled') extra.push(r.value);
    sftps.push(...extra.map((c) => c.sftp));
    reporter.info(
      `the server allows ${sftps.length - extra.length} SFTP session(s) per connection (${reason}; sshd's MaxSessions): ` +
        (extra.length ? `writing over ${extra.length + 1} connections, ${sftps.length} channels in all` : `writing over ${sftps.length} channel(s)`),
    );
  }
  const closed = Promise.race([conn.closed, ...extra.map((c) => c.closed)]);
  return {
    sftps,
    extra,
    closed,
    async close() {
      for (const s of sftps.slice(1, sftps.length - extra.length)) s.end();
      await Promise.all(extra.map((c) => c.end().catch(() => undefined)));
    },
  };
}
