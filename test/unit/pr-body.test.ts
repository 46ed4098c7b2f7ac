import { describe, expect, test } from '@jest/globals';
import { prBody, PR_BODY_LIMIT } from '../../src/docs/pr-body.js';

const full = {
  software: 'cuda',
  oldPath: '/images/cuda-12.4.sif',
  newPath: '/images/cuda-12.6.sif',
  sha256: 'a'.repeat(64),
  size: 5 * 1024 ** 3,
  sourceUri: 'docker://nvcr.io/nvidia/cuda:12.6.0-devel-ubuntu22.04',
  sourceDigest: `sha256:${'b'.repeat(64)}`,
  buildKey: 'c'.repeat(16),
  smokeMarkdown: '| Partition | GPU | Result |\n|---|---|---|\n| gpu | A100 | ✅ |',
  runUrl: 'https://github.com/hpc/images/actions/runs/42',
};

function smokeTable(rows: number): string {
  return ['| Partition | GPU | Result |', '|---|---|---|', ...Array.from({ length: rows }, (_, i) => `| gpu${i} | A100 | passed in ${i} s |`)].join('\n');
}

describe('prBody', () => {
  test('says which row changes, what the image is, how the smoke test went and which run made it', () => {
    expect(prBody(full)).toBe(
      [
        'Updates the **cuda** row of the preset images table.',
        '',
        '- Location: `/images/cuda-12.4.sif` → `/images/cuda-12.6.sif`',
        '',
        '### Image',
        '',
        `- sha256: \`${'a'.repeat(64)}\``,
        '- Size: 5.0 GiB (5368709120 bytes)',
        '- Source: `docker://nvcr.io/nvidia/cuda:12.6.0-devel-ubuntu22.04`',
        `- Source digest: \`sha256:${'b'.repeat(64)}\``,
        `- Build key: \`${'c'.repeat(16)}\``,
        '',
        '### Smoke test',
        '',
        '| Partition | GPU | Result |',
        '|---|---|---|',
        '| gpu | A100 | ✅ |',
        '',
        '---',
        'Opened by build-image from [this workflow run](https://github.com/hpc/images/actions/runs/42).',
        '',
      ].join('\n'),
    );
  });

  test('a new row has no old path, and missing facts are left out', () => {
    expect(prBody({ software: 'gromacs', newPath: '/images/gromacs.sif' })).toBe(
      'Updates the **gromacs** row of the preset images table.\n\n- Location: `/images/gromacs.sif` (new row)\n\n---\nOpened by build-image.\n',
    );
  });

  test('values with backticks or Markdown characters cannot break the formatting', () => {
    const body = prBody({ software: 'my_*tool*', newPath: '/images/a`b.sif' });
    expect(body).toContain('**my\\_\\*tool\\*** row');
    expect(body).toContain('``/images/a`b.sif``');
  });

  test('a huge smoke table is cut at a row boundary with a note, and the body stays under the limit', () => {
    const smoke = smokeTable(5000);
    const body = prBody({ ...full, smokeMarkdown: smoke });

    expect(smoke.length).toBeGreaterThan(100_000);
    expect(body.length).toBeLessThanOrEqual(PR_BODY_LIMIT);
    expect(body.length).toBeGreaterThan(PR_BODY_LIMIT - 1000);
    expect(body).toMatch(/\| gpu\d+ \| A100 \| passed in \d+ s \|\n\n_Smoke results truncated: \d+ of \d+ characters shown; the workflow run has them all._\n/);
    // What follows the table survives the cut.
    expect(body).toContain('[this workflow run](https://github.com/hpc/images/actions/runs/42)');
    expect(body).toContain('- Build key:');
  });

  test('a cut inside a code block closes the block', () => {
    const body = prBody({ ...full, smokeMarkdown: ['```', ...Array.from({ length: 20_000 }, (_, i) => `line ${i}`), '```'].join('\n') });
    const fences = body.match(/^```/gm) ?? [];
    expect(fences.length % 2).toBe(0);
    expect(body.length).toBeLessThanOrEqual(PR_BODY_LIMIT);
  });

  test('a table that fits is kept whole', () => {
    const smoke = smokeTable(100);
    expect(prBody({ ...full, smokeMarkdown: smoke })).toContain(smoke);
  });

  test('absurdly long values are clipped so the body still fits', () => {
    const body = prBody({ ...full, software: 'x'.repeat(200_000), sourceUri: 'y'.repeat(200_000), smokeMarkdown: smokeTable(5000) });
    expect(body.length).toBeLessThanOrEqual(PR_BODY_LIMIT);
    expect(body).toContain('…');
  });
});
