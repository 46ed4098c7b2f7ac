// The committed bundle is what the sources build to: the action runs dist/index.js, not src/.
import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
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
    const out = tempDir('bi-dist-');
    try {
      execFileSync('node', ['scripts/bundle.mjs', '--outdir', out.dir], { stdio: 'pipe' });
      const fresh = files(out.dir);
      expect(files('dist')).toEqual(fresh);
      for (const f of fresh) {
        const stale = !readFileSync(path.join('dist', f)).equals(readFileSync(path.join(out.dir, f)));
        expect(stale ? `${f} is stale: run npm run bundle` : f).toBe(f);
      }
    } finally {
      out.cleanup();
    }
  });

  test('the bundled CLI tells its version, package.json\'s', () => {
    const version = JSON.parse(readFileSync('package.json', 'utf8')).version as string;
    expect(execFileSync(process.execPath, ['dist/cli.js', '--version'], { encoding: 'utf8' })).toBe(`build-image ${version}\n`);
  });
});
