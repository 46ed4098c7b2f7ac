// What a build that died leaves behind (kill -9, a lost runner), recognised by the PID in the names and removed
// by the next build once no process with that PID runs.
import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Reporter } from '../report/reporter.js';

/**
 * Removes what builds that died left behind: `.NAME.partial-PID` beside the output and `build-image-PID-*`
 * directories in the temporary directory, when no process with that PID runs any more.
 */
export async function removeStaleLeftovers(output: string, reporter: Reporter, tmpRoot: string): Promise<void> {
  const dead = (pid: number) => {
    if (pid === process.pid) return false;
    try {
      process.kill(pid, 0);
      return false;
    } catch (error) {
      return (error as NodeJS.ErrnoException).code === 'ESRCH';
    }
  };
  const partial = new RegExp(`^\\.${escapeRegExp(path.basename(output))}\\.partial-(\\d+)$`);
  const places: [string, RegExp][] = [
    [path.dirname(output), partial],
    ...[...new Set([os.tmpdir(), tmpRoot])].map((dir): [string, RegExp] => [dir, /^build-image-(\d+)-/]),
  ];
  for (const [dir, pattern] of places) {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const m = pattern.exec(name);
      if (!m || !dead(Number(m[1]))) continue;
      await rm(path.join(dir, name), { recursive: true, force: true }).catch(() => undefined);
      reporter.info(`removed ${path.join(dir, name)}, left by a build that died (process ${m[1]})`);
    }
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
