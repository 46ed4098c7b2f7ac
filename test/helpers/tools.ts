// Test prerequisites. A missing component fails the test with what to run; it is never skipped.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execNeedsUserns, hasAllCapabilities } from '../../src/build/builder.js';

export function requireTools(...names: string[]): void {
  const missing = names.filter((name) => {
    try {
      execFileSync('sh', ['-c', `command -v ${name} || test -x /usr/sbin/${name}`], { stdio: 'ignore' });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length > 0) {
    throw new Error(`missing ${missing.join(', ')}: run scripts/provision.sh as root (CI=${process.env.CI ?? 'unset'})`);
  }
}

/** A temporary directory under /tmp (which the apptainer shim shares with the host), removed by `cleanup`. */
export function tempDir(prefix = 'bi-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Whether root here lacks capabilities, so `apptainer exec` needs --userns (decided as the action decides). */
export function execFlags(): string[] {
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]}`);
  const lastCap = Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8').trim());
  const fullCapabilities = hasAllCapabilities(capEff, lastCap);
  return execNeedsUserns({ uid: process.getuid?.() ?? -1, capEff, fullCapabilities }) ? ['--userns'] : [];
}
