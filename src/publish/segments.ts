// Verification that overlaps the upload: the image is cut into segments on a fixed grid; the runner hashes each
// segment from its one sequential read of the image (image-hash.ts), the server hashes it (Python, or `dd | openssl
// dgst`, over SSH exec) as soon as every byte of it is confirmed written, whichever channel wrote it, up to two at a
// time: over hashing processes kept open for the upload (hash-lane.ts), or one command per segment where those cannot
// be started.
import { shellQuote } from '../util/shell.js';
import type { SftpConnection } from './connect.js';
import type { RangeMap } from './ranges.js';
import { BLOCK, HashLane } from './hash-lane.js';
import { execHash, HASH_STDIN, hashTimeoutMs, viaSh, type HashTool, type RemoteHash } from './remote-hash.js';

/** The confirmed ranges of an upload in progress, and a way to wait until a range is in them. */
export class Coverage {
  private waiters: { start: number; end: number; resolve: (covered: boolean) => void }[] = [];

  constructor(readonly map: RangeMap) {}

  add(start: number, end: number): void {
    this.map.add(start, end);
    if (this.waiters.length === 0) return;
    this.waiters = this.waiters.filter((w) => {
      if (!this.map.covers(w.start, w.end)) return true;
      w.resolve(true);
      return false;
    });
  }

  /** Resolves true once [start, end) is confirmed, false when the attempt ends first. */
  wait(start: number, end: number): Promise<boolean> {
    if (this.map.covers(start, end)) return Promise.resolve(true);
    return new Promise((resolve) => this.waiters.push({ start, end, resolve }));
  }

  /** The attempt is over: nothing more will be confirmed. */
  end(): void {
    for (const w of this.waiters) w.resolve(false);
    this.waiters = [];
  }
}

export interface SegmentOutcome {
  ok: boolean;
  count: number;
  tool: HashTool;
  reason?: string;
  stopped?: string;
}

export class SegmentVerifier {
  /** One queue of remote commands per lane (see `lanes`), where its hashing process could not be used. */
  private lanes: Promise<unknown>[];
  /** Each lane's hashing process on the server, started with the upload; undefined where it could not be. */
  private readonly hashLanes: Promise<HashLane | undefined>[];
  private next = 0;
  private readonly results: Promise<string | undefined>[] = [];
  private abandoned = false;
  private asked = false;
  /** Why segment hashing was given up midway, when it was. */
  private stopped?: string;
  private tool: HashTool = 'sha256sum';

  private readonly segmentBytes: number;
  private readonly coverage: Coverage;
  private readonly stopReason: () => string | undefined;
  private readonly size: number;

  constructor(
    private readonly conn: SftpConnection,
    private readonly path: string,
    o: {
      /** The image's size. */
      size: number;
      /** Bytes a segment (whole MiB); the last of them are hashed in quarters. */
      segmentBytes: number;
      coverage: Coverage;
      /**
       * Asked when the server's first segment hash comes through a pipe (not Python): a reason to stop hashing in
       * segments, or undefined to go on.
       */
      stopReason?: () => string | undefined;
      /**
       * Remote commands run at once: segments that complete together (a resumed upload's gaps end together) are hashed
       * side by side, as long as the exec channels and the upload's stay within sshd's default MaxSessions (10): beyond
       * it, a command needs a connection of its own.
       */
      lanes?: number;
    },
  ) {
    this.segmentBytes = o.segmentBytes;
    this.coverage = o.coverage;
    this.stopReason = o.stopReason ?? (() => undefined);
    this.size = o.size;
    this.lanes = Array.from({ length: Math.max(1, o.lanes ?? 1) }, () => Promise.resolve());
    this.hashLanes = this.lanes.map(() => HashLane.open(conn, path));
  }

  /**
   * Where the segments end, the last at the image's end: `segmentBytes` each up to the tail (the one before it cut
   * short where it begins), then quarters.
   */
  ends(): number[] {
    // The last `segmentBytes` are hashed in quarters: what is left to wait for once the upload ends is one quarter's
    // hashing, not a whole segment's.
    const tailStart = Math.max(0, Math.floor((this.size - this.segmentBytes) / BLOCK) * BLOCK);
    const quarter = Math.max(BLOCK, Math.floor(this.segmentBytes / 4 / BLOCK) * BLOCK);
    const ends: number[] = [];
    for (let start = 0; start < this.size; start = ends[ends.length - 1]) {
      ends.push(start < tailStart ? Math.min(start + this.segmentBytes, tailStart) : Math.min(start + quarter, this.size));
    }
    return ends;
  }

  abandon(): void {
    this.abandoned = true;
    this.closeLanes();
  }

  async outcome(): Promise<SegmentOutcome> {
    const settled = await Promise.all(this.results);
    this.closeLanes();
    const problems = settled.filter((r) => r !== undefined);
    const ok = problems.length === 0 && this.results.length > 0 && !this.stopped;
    return { ok, count: this.results.length, tool: this.tool, reason: problems[0], stopped: this.stopped };
  }

  /** The runner's sha256 of the segment [start, end), told in order: the server is asked for its own once it holds the segment. */
  hashed(start: number, end: number, local: string): void {
    if (this.stopped) return;
    // Hashed in the order segments reach the server (the channels fill the file from the front, a resumed one's gaps anywhere).
    const result = this.coverage
      .wait(start, end)
      .then((covered) => {
        if (!covered || this.abandoned) return 'abandoned';
        return this.hashOnServer(this.next++ % this.lanes.length, start, end).then((hashed) => {
          if (hashed === 'abandoned') return hashed;
          if ('refused' in hashed) return `segment ${start}-${end}: ${hashed.refused}`;
          this.tool = hashed.tool;
          // Python reads the partial itself, for less than a pass afterwards costs, however fast the upload; a pipe
          // (`dd | openssl`) costs three times that, which a fast upload on a short link feels.
          if (!this.asked && hashed.tool !== 'python3') {
            this.stopped = this.stopReason();
            if (this.stopped) this.abandon(); // segments not yet hashed on the server are no longer needed
          }
          this.asked = true;
          return hashed.sha256 === local ? undefined : `segment ${start}-${end} differs`;
        });
      })
      .catch((error: unknown) => `segment ${start}-${end}: ${(error as Error).message}`);
    this.results.push(result);
  }

  /**
   * Over the lane's process where it runs, asked at once (it answers in turn); else, or once it has ended on a live
   * connection, by a command of its own, one at a time per lane.
   */
  private async hashOnServer(lane: number, start: number, end: number): Promise<RemoteHash | 'abandoned'> {
    const server = await this.hashLanes[lane];
    const timeoutMs = hashTimeoutMs(end - start);
    const skip = start / BLOCK;
    const count = Math.ceil((end - start) / BLOCK);
    if (server?.usable) {
      try {
        return await server.hash(skip, count, timeoutMs);
      } catch (error) {
        if (!this.conn.isOpen()) throw error;
      }
    }
    const run = this.lanes[lane].then(async (): Promise<RemoteHash | 'abandoned'> =>
      this.abandoned ? ('abandoned' as const) : execHash(this.conn, viaSh(`dd if=${shellQuote(this.path)} bs=${BLOCK} skip=${skip} count=${count} 2>/dev/null | ${HASH_STDIN}`), timeoutMs),
    );
    this.lanes[lane] = run.catch(() => undefined);
    return run;
  }

  private closeLanes(): void {
    for (const lane of this.hashLanes) void lane.then((l) => l?.close());
  }
}
