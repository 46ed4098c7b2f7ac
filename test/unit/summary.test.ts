import { describe, expect, test } from '@jest/globals';
import { Masker } from '../../src/report/reporter.js';
import { formatBytes, formatDuration, renderMarkdown, renderText, type Summary } from '../../src/report/summary.js';

const summary: Summary = {
  title: 'build-image: build',
  facts: [
    { label: 'Image', value: '/tmp/a|b.sif', code: true },
    { label: 'Size', value: formatBytes(1085440) },
  ],
  table: { caption: 'Lint findings', header: ['Line', 'Message'], rows: [['7', 'pipe | inside']] },
};

describe('summaries', () => {
  test('Markdown for the job summary escapes table pipes', () => {
    expect(renderMarkdown(summary)).toBe(
      '## build-image: build\n\n| | |\n|---|---|\n| Image | `/tmp/a|b.sif` |\n| Size | 1.0 MiB (1085440 bytes) |\n\n**Lint findings**\n\n| Line | Message |\n|---|---|\n| 7 | pipe \\| inside |\n',
    );
  });

  test('text for the terminal aligns the values', () => {
    expect(renderText(summary)).toBe(
      'build-image: build\n==================\nImage  /tmp/a|b.sif\nSize   1.0 MiB (1085440 bytes)\n\nLint findings:\n  7  pipe | inside\n',
    );
  });

  test('sizes and durations read naturally', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(5 * 1024 ** 3)).toBe('5.0 GiB (5368709120 bytes)');
    expect(formatDuration(3.21)).toBe('3.2 s');
    expect(formatDuration(125)).toBe('2 min 5 s');
  });
});

describe('masking', () => {
  test('replaces a secret and each line of a multi-line secret', () => {
    const m = new Masker();
    m.add('-----BEGIN KEY-----\nAAAAsecretline\n-----END KEY-----');
    m.add('hunter2');
    expect(m.mask('key AAAAsecretline and hunter2')).toBe('key *** and ***');
  });
});
