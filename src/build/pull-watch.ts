// Notices a pull that stalls: while the builder fetches an image (between its "Fetching"/"Copying" lines and the
// first line of what comes after), neither a new output line nor a byte more in its download directories for
// `stallMs` means the registry stopped sending. Apptainer prints no progress when not on a terminal and has no
// timeout of its own, so without this a stalled registry hangs the build for as long as one waits.
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

const PULL_STARTS = /Fetching OCI image|Copying blob|Getting image source|Downloading (library|oras|shub)? ?image|Pulling/i;
const PULL_ENDS = /Extracting OCI image|Extracting local image|Inserting Apptainer configuration|Inserting Singularity configuration|Running (setup|post) scriptlet|Adding labels|Creating SIF/i;

export class PullWatch {
  /** Whether the builder is fetching the image now (read after a failure to say what failed). */
  pulling = false;
  private lastActivity = Date.now();
  private lastBytes = -1;
  private timer?: ReturnType<typeof setInterval>;
  private busy = false;

  constructor(
    /** Where downloads land: the builder's cache and temporary directories. */
    private readonly dirs: string[],
    private readonly stallMs: number,
    private readonly onStall: () => void,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), Math.max(200, Math.min(2000, this.stallMs / 5)));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Every line of the builder's output: activity, and the pull's start and end. */
  line(text: string): void {
    this.lastActivity = Date.now();
    if (PULL_STARTS.test(text)) this.pulling = true;
    else if (PULL_ENDS.test(text)) this.pulling = false;
  }

  private async check(): Promise<void> {
    if (this.busy || !this.pulling) return;
    this.busy = true;
    try {
      const bytes = (await Promise.all(this.dirs.map((d) => treeBytes(d, 6)))).reduce((a, b) => a + b, 0);
      if (bytes !== this.lastBytes) {
        this.lastBytes = bytes;
        this.lastActivity = Date.now();
      } else if (Date.now() - this.lastActivity > this.stallMs && this.timer) {
        this.stop();
        this.onStall();
      }
    } finally {
      this.busy = false;
    }
  }
}

/** Bytes of the files under `dir`, down to `depth` levels; missing or unreadable parts count as 0. */
async function treeBytes(dir: string, depth: number): Promise<number> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  let total = 0;
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory() && depth > 0) total += await treeBytes(p, depth - 1);
    else if (e.isFile()) total += (await stat(p).catch(() => undefined))?.size ?? 0;
  }
  return total;
}
