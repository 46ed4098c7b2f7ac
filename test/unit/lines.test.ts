// Output is read line by line with bounded memory: characters split across chunks stay whole, "\r\n" split across
// chunks is one line end, a line over the limit is cut and marked, and the last line counts without a newline.
import { describe, expect, test } from '@jest/globals';
import { LineSplitter } from '../../src/util/lines.js';
import { runProcess } from '../../src/util/process.js';

function split(chunks: (Buffer | string)[], max?: number): string[] {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l), max);
  for (const c of chunks) s.write(typeof c === 'string' ? Buffer.from(c) : c);
  s.end();
  return lines;
}

describe('LineSplitter', () => {
  test('a multibyte character split across chunks arrives whole', () => {
    const bytes = Buffer.from('GPU 名称 ✓ 🚀\n');
    const chunks = [...bytes].map((b) => Buffer.from([b]));
    expect(split(chunks)).toEqual(['GPU 名称 ✓ 🚀']);
  });

  test('"\\r\\n" split across chunks is one line end; lone "\\r" ends a line too', () => {
    expect(split(['a\r', '\nb\rc\n'])).toEqual(['a', 'b', 'c']);
  });

  test('the last line counts without a newline', () => {
    expect(split(['first\nthe reason'])).toEqual(['first', 'the reason']);
    expect(split(['only\n'])).toEqual(['only']);
    expect(split([''])).toEqual([]);
  });

  test('a line over the limit is cut and marked, and the lines after it are whole', () => {
    expect(split(['x'.repeat(30), 'y'.repeat(5), '\nnext\n'], 10)).toEqual([`${'x'.repeat(10)} [line cut: 25 more characters]`, 'next']);
  });
});

describe('runProcess', () => {
  test('keeps an unterminated last line of stdout and stderr, and decodes multibyte output split across writes', async () => {
    const script = "process.stdout.write(Buffer.from([0xe5, 0x90])); setTimeout(() => { process.stdout.write(Buffer.from([0x8d, 0x0a])); process.stderr.write('reason without newline'); }, 50);";
    const run = await runProcess(process.execPath, ['-e', script]);
    expect(run.stdout).toBe('名');
    expect(run.tail).toEqual(['名', 'reason without newline']);
  });
});
