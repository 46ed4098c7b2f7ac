import { describe, expect, test } from '@jest/globals';
import { parseSource } from '../../src/build/source.js';
import { matchingTags, parseTagPattern, sourceTagProblem, withTag } from '../../src/build/tags.js';

const NGC = ['24.01-py3', '24.9-py3', '24.10-py3', '24.10-py3-igpu', '24.02-tf2-py3', '23.12-py3', 'latest', '24.11-py2', '24.08-py3'];

describe('template patterns', () => {
  test('fields compare as numbers: 24.10-py3 is newer than 24.9-py3, whatever the string order says', () => {
    expect(matchingTags(NGC, parseTagPattern('{yy}.{mm}-py3'))).toEqual(['24.10-py3', '24.9-py3', '24.08-py3', '24.01-py3', '23.12-py3']);
  });

  test('the pattern matches whole tags: suffixed and other-flavour tags are ignored', () => {
    const matched = matchingTags(NGC, parseTagPattern('{yy}.{mm}-py3'));
    expect(matched).not.toContain('24.10-py3-igpu');
    expect(matched).not.toContain('24.02-tf2-py3');
    expect(matched).not.toContain('24.11-py2');
  });

  test('the year field outweighs the month: 25.1 is newer than 24.12', () => {
    expect(matchingTags(['24.12-py3', '25.1-py3', '24.2-py3'], parseTagPattern('{yy}.{mm}-py3'))[0]).toBe('25.1-py3');
  });

  test('* matches any text and is not compared; a . is a literal dot', () => {
    const pattern = parseTagPattern('{major}.{minor}.{patch}-cuda*');
    expect(matchingTags(['2.5.1-cuda12.4-cudnn9-runtime', '2.10.0-cuda12.8-cudnn9-devel', '2.9.1-cuda12.6', '2x5x1-cuda12'], pattern)).toEqual([
      '2.10.0-cuda12.8-cudnn9-devel',
      '2.9.1-cuda12.6',
      '2.5.1-cuda12.4-cudnn9-runtime',
    ]);
  });

  test('numbers longer than a double holds still order exactly', () => {
    expect(matchingTags(['v90071992547409921', 'v90071992547409920'], parseTagPattern('v{n}'))[0]).toBe('v90071992547409921');
  });

  test('equal versions written differently (24.9 and 24.09) give one stable choice', () => {
    const pattern = parseTagPattern('{yy}.{mm}-py3');
    expect(matchingTags(['24.9-py3', '24.09-py3'], pattern)).toEqual(matchingTags(['24.09-py3', '24.9-py3'], pattern));
  });

  test.each([
    ['24.10-py3', /has no \{field\} to order tags by/],
    ['{yy.{mm}', /'\{' at column 1 of \{yy\.\{mm\} does not open a field/],
    ['{yy}:{mm}', /":" at column 5 of \{yy\}:\{mm\} cannot occur in a tag/],
    ['{} x', /does not open a field/],
    ['/(\\d+/', /is not a regular expression/],
    ['/x', /written between slashes/],
  ])('%s is refused, saying why', (text, message) => {
    expect(() => parseTagPattern(text)).toThrow(message);
  });
});

describe('regular-expression patterns', () => {
  test('capture groups order the tags, digits as numbers', () => {
    expect(matchingTags(NGC, parseTagPattern('/(\\d+)\\.(\\d+)-py3/'))[0]).toBe('24.10-py3');
  });

  test('the expression must match the whole tag', () => {
    expect(matchingTags(NGC, parseTagPattern('/24\\.1\\d-py3/'))).toEqual(['24.10-py3']);
  });

  test('without groups, the digit runs of the tag order it', () => {
    expect(matchingTags(['1.9', '1.10', '1.2', 'x'], parseTagPattern('/\\d+\\.\\d+/'))).toEqual(['1.10', '1.9', '1.2']);
  });
});

describe('the source a pattern follows', () => {
  const pattern = parseTagPattern('{yy}.{mm}-py3');
  const cwd = process.cwd();

  test('a repository without a tag, or with a tag the pattern matches, is accepted', () => {
    expect(sourceTagProblem(parseSource('docker://nvcr.io/nvidia/pytorch', cwd), pattern)).toBeUndefined();
    expect(sourceTagProblem(parseSource('docker://nvcr.io/nvidia/pytorch:24.10-py3', cwd), pattern)).toBeUndefined();
  });

  test('a tag the pattern does not match is refused (a typo in the pattern shows before any registry is asked)', () => {
    expect(sourceTagProblem(parseSource('docker://nvcr.io/nvidia/pytorch:24.10-py3', cwd), parseTagPattern('{yy}.{mm}-py'))).toBe(
      'the tag 24.10-py3 in source does not match source-tag-pattern {yy}.{mm}-py',
    );
  });

  test('a digest-pinned source and a file source cannot follow tags', () => {
    expect(sourceTagProblem(parseSource(`docker://nvcr.io/nvidia/pytorch@sha256:${'a'.repeat(64)}`, cwd), pattern)).toMatch(/pinned to a digest/);
    expect(sourceTagProblem({ kind: 'sif', uri: '/x.sif', path: '/x.sif' }, pattern)).toMatch(/not a docker:\/\/ or oras:\/\/ reference/);
  });

  test('the chosen tag replaces the written one, on the same registry and repository', () => {
    const source = parseSource('docker://127.0.0.1:5000/nvidia/pytorch:24.01-py3', cwd) as Parameters<typeof withTag>[0];
    expect(withTag(source, '24.10-py3').uri).toBe('docker://127.0.0.1:5000/nvidia/pytorch:24.10-py3');
  });
});
