// Test prerequisites. A missing component fails the test with what to run; it is never skipped.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

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

/** Whether root here lacks capabilities, so `apptainer exec` needs --userns (as the action decides too). */
export function execFlags(): string[] {
  const status = execFileSync('cat', ['/proc/self/status'], { encoding: 'utf8' });
  const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)![1]}`);
  const last = Number(execFileSync('cat', ['/proc/sys/kernel/cap_last_cap'], { encoding: 'utf8' }).trim());
  const all = (1n << BigInt(last + 1)) - 1n;
  return process.getuid?.() === 0 && (capEff & all) !== all ? ['--userns'] : [];
}
