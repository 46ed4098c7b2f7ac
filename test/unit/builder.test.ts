import { describe, expect, test } from '@jest/globals';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { detectBuilder, execNeedsUserns, hasAllCapabilities, parseVersion, useFakeroot, type Privileges } from '../../src/build/builder.js';

describe('builder version strings', () => {
  test.each([
    ['apptainer version 1.4.5\n', 'apptainer', '1.4.5'],
    ['singularity-ce version 4.1.2-jammy\n', 'singularity-ce', '4.1.2-jammy'],
    ['singularity version 3.8.7-1.el7\n', 'singularity', '3.8.7-1.el7'],
  ])('%j', (text, product, version) => {
    expect(parseVersion(text)).toEqual({ product, version });
  });
});

describe('builder detection', () => {
  // Executables named like the builders that print what each product prints; detection reads PATH and runs --version.
  function fakePath(files: Record<string, string>): string {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-path-'));
    for (const [name, output] of Object.entries(files)) {
      writeFileSync(path.join(dir, name), `#!/bin/sh\necho '${output}'\n`);
      chmodSync(path.join(dir, name), 0o755);
    }
    return dir;
  }

  test('auto prefers apptainer and reads APPTAINER_ variables', async () => {
    const dir = fakePath({ apptainer: 'apptainer version 1.3.0', singularity: 'singularity-ce version 4.1.0' });
    expect(await detectBuilder('auto', dir)).toMatchObject({ command: 'apptainer', product: 'apptainer', version: '1.3.0', envPrefix: 'APPTAINER_' });
  });

  test('auto falls back to SingularityCE, which reads SINGULARITY_ variables', async () => {
    const dir = fakePath({ singularity: 'singularity-ce version 4.1.0' });
    expect(await detectBuilder('auto', dir)).toMatchObject({ command: 'singularity', product: 'singularity-ce', envPrefix: 'SINGULARITY_' });
  });

  test("apptainer's `singularity` compatibility link still reads APPTAINER_ variables", async () => {
    const dir = fakePath({ singularity: 'apptainer version 1.4.5' });
    expect(await detectBuilder('singularity', dir)).toMatchObject({ command: 'singularity', product: 'apptainer', envPrefix: 'APPTAINER_' });
  });

  test('none installed is a clear error', async () => {
    await expect(detectBuilder('auto', fakePath({}))).rejects.toThrow(/builder: neither apptainer nor singularity found on PATH/);
  });
});

describe('privileges', () => {
  const root = (capEff: bigint): Privileges => ({ uid: 0, capEff, fullCapabilities: hasAllCapabilities(capEff, 40) });

  test('root missing CAP_SYS_RESOURCE (as on these CI machines) builds with --fakeroot and execs with --userns', () => {
    const p = root(0x000001fffeffffffn);
    expect(p.fullCapabilities).toBe(false);
    expect(useFakeroot('auto', p)).toMatchObject({ fakeroot: true, reason: expect.stringMatching(/root lacks capabilities/) });
    expect(execNeedsUserns(p)).toBe(true);
  });

  test('root with every capability builds as root', () => {
    const p = root(0x000001ffffffffffn);
    expect(useFakeroot('auto', p).fakeroot).toBe(false);
    expect(execNeedsUserns(p)).toBe(false);
  });

  test('a normal user builds with --fakeroot; explicit choices win', () => {
    const user: Privileges = { uid: 1000, capEff: 0n, fullCapabilities: false };
    expect(useFakeroot('auto', user).fakeroot).toBe(true);
    expect(useFakeroot('false', user).fakeroot).toBe(false);
    expect(useFakeroot('true', root(0x000001ffffffffffn)).fakeroot).toBe(true);
  });
});
