// Every way a run can end says so: a run left waiting with nothing to wake it (Node would exit with status 13 and
// no message) and an unhandled rejection both become an error that names the phase. Run in a child process, as the
// real entry points are, since both depend on the process's own event loop.
import { describe, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { build } from 'esbuild';
import { tempDir } from '../helpers/tools.js';

async function runScript(body: string): Promise<{ status: number | null; out: string }> {
  const dir = tempDir('bi-exit-');
  try {
    const file = path.join(dir.dir, 'entry.mjs');
    await build({
      stdin: { contents: `import { guarded, setPhase } from ${JSON.stringify(path.resolve('src/util/phase.ts'))};\n${body}`, resolveDir: process.cwd(), loader: 'ts' },
      outfile: file,
      bundle: true,
      format: 'esm',
      platform: 'node',
      logLevel: 'silent',
    });
    const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 20_000 });
    return { status: run.status, out: run.stdout + run.stderr };
  } finally {
    dir.cleanup();
  }
}

const REPORT = `.then(() => console.log('finished'), (e) => { console.log('error: ' + e.message); process.exitCode = 1; });`;

describe('the run guard', () => {
  test('a wait that nothing can complete ends with an error naming the phase, not a silent exit 13', async () => {
    const run = await runScript(`setPhase('Promote');\nguarded(() => new Promise(() => {}))${REPORT}`);
    expect(run.status).toBe(1);
    expect(run.out).toContain('error: the run stopped during "Promote" with an operation still waiting and nothing left to complete it');
  });

  test('an unhandled rejection ends the run with an error naming the phase', async () => {
    const run = await runScript(
      `setPhase('Stage over SFTP');\nguarded(async () => { Promise.reject(new Error('lost socket')); await new Promise((r) => setTimeout(r, 1500)); })${REPORT}`,
    );
    expect(run.status).toBe(1);
    expect(run.out).toContain('error: unexpected failure during "Stage over SFTP": lost socket');
  });

  test('a run that completes is not disturbed', async () => {
    const run = await runScript(`guarded(async () => { await new Promise((r) => setTimeout(r, 50)); })${REPORT}`);
    expect(run.status).toBe(0);
    expect(run.out.trim()).toBe('finished');
  });
});
