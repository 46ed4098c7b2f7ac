// The committed bundle is what the sources build to: the action runs dist/index.js, not src/.
import { describe, expect, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from '../helpers/tools.js';

function files(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => path.relative(dir, path.join(d.parentPath ?? d.path, d.name)))
    .sort();
}

describe('dist/', () => {
  test('is current: bundling the sources again gives the same files', () => {
    // Beside dist/, so that the source maps' relative paths to src/ (and with them the chunks' hashes) are the same.
    const out = `dist-fresh-${process.pid}`;
    try {
      execFileSync('node', ['scripts/bundle.mjs', '--outdir', out], { stdio: 'pipe' });
      const fresh = files(out);
      expect(files('dist')).toEqual(fresh);
      for (const f of fresh) {
        const stale = !readFileSync(path.join('dist', f)).equals(readFileSync(path.join(out, f)));
        expect(stale ? `${f} is stale: run npm run bundle` : f).toBe(f);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('the bundled CLI tells its version, package.json\'s', () => {
    const version = JSON.parse(readFileSync('package.json', 'utf8')).version as string;
    expect(execFileSync(process.execPath, ['dist/cli.js', '--version'], { encoding: 'utf8' })).toBe(`build-image ${version}\n`);
  });

  test("a bug's stack trace names the source files and lines, not the bundle's", () => {
    // A state file that is a directory makes saving state throw where no error is expected: a crash, as a bug is.
    const dir = tempDir('bi-crash-');
    try {
      writeFileSync(path.join(dir.dir, 'x.def'), `Bootstrap: localimage\nFrom: ${path.resolve('test/fixtures/sif/busybox-gzip.sif')}\n`);
      const env = { PATH: process.env.PATH, HOME: dir.dir, INPUT_STAGE: 'build', INPUT_DEFINITION: 'x.def', 'INPUT_DRY-RUN': 'true', GITHUB_STATE: dir.dir };
      const run = spawnSync(process.execPath, [path.resolve('dist/index.js')], { cwd: dir.dir, env, encoding: 'utf8' });
      const error = run.stdout.split('\n').find((l) => l.startsWith('::error::'))?.replace(/%0A/g, '\n') ?? '';
      expect(error).toMatch(/^::error::Error: EISDIR/);
      expect(error).toMatch(/^ +at hold \(\S*\/src\/util\/resources\.ts:\d+:\d+\)$/m);
      expect(error).toMatch(/^ +at buildWithApptainer \(\S*\/src\/build\/apptainer\.ts:\d+:\d+\)$/m);
      expect(error).not.toMatch(/dist\/chunks\//);
    } finally {
      dir.cleanup();
    }
  });
});
