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
      'build-image: build\n==================\nImage  /tmp/a|b.sif\nSize   1.0 MiB (1085440 bytes)\n\nLint findings:\n  Line  Message\n  ----  -------------\n     7  pipe | inside\n',
    );
  });

  test('text tables have a header, figures aligned right, and charts only in Markdown', () => {
    const bench: Summary = {
      title: 'smoke',
      facts: [],
      table: { caption: 'Benchmark', header: ['Metric', 'Baseline', 'New image', 'Ratio'], rows: [['bf16 GEMM', '785 TFLOP/s', '790 TFLOP/s', '1.01×'], ['import torch (lower is better)', '5.38 s', '8.65 s', '1.61×'], ['H2D', '—', '55.4 GB/s', '—']] },
      charts: ['```mermaid\nxychart-beta\n```'],
      notes: ['Passed.'],
    };
    expect(renderText(bench)).toBe(
      [
        'smoke',
        '=====',
        '',
        'Benchmark:',
        '  Metric                             Baseline    New image  Ratio',
        '  ------------------------------  -----------  -----------  -----',
        '  bf16 GEMM                       785 TFLOP/s  790 TFLOP/s  1.01×',
        '  import torch (lower is better)       5.38 s       8.65 s  1.61×',
        '  H2D                                       —    55.4 GB/s      —',
        '',
        'Passed.',
        '',
      ].join('\n'),
    );
    expect(renderMarkdown(bench)).toContain('\n\n```mermaid\nxychart-beta\n```\n\nPassed.\n');
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
