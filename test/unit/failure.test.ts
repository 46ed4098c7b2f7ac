import { describe, expect, test } from '@jest/globals';
import { inUserTerms, locateScriptletFailure, scriptletStarted } from '../../src/build/failure.js';

const TWO_STAGES = [
  'Bootstrap: docker', // 1
  'From: busybox:1.36', // 2
  'Stage: one', // 3
  '', // 4
  '%post', // 5
  '    echo first stage', // 6
  '    false', // 7
  '', // 8
  'Bootstrap: docker', // 9
  'From: busybox:1.36', // 10
  'Stage: two', // 11
  '', // 12
  '%post', // 13
  '    echo second stage', // 14
  '    test -f /missing', // 15
  '    echo never', // 16
  '',
].join('\n');

const fatal = (section: string, status: number) => `FATAL:   While performing build: while running engine: while running %${section} section: exit status ${status}`;

describe('locateScriptletFailure', () => {
  test('names the failing command and its line, in the stage whose scriptlet ran last', () => {
    const tail = ['INFO:    Running post scriptlet', '+ echo second stage', '+ test -f /missing', 'second stage', fatal('post', 1)];
    expect(locateScriptletFailure(tail, ['post', 'post'], TWO_STAGES, '/src/app.def')).toEqual({ section: 'post', status: 1, where: '/src/app.def:15', command: 'test -f /missing' });
  });

  test('the first stage when only one scriptlet started', () => {
    const tail = ['+ echo first stage', 'first stage', '+ false', fatal('post', 1)];
    expect(locateScriptletFailure(tail, ['post'], TWO_STAGES, 'app.def')?.where).toBe('app.def:7');
  });

  test('a traced command not written as such (expanded variables) points at the section line', () => {
    const tail = ['+ cp /opt/a-1.2 /dst', fatal('post', 1)];
    expect(locateScriptletFailure(tail, ['post'], TWO_STAGES, 'app.def')).toEqual({ section: 'post', status: 1, where: 'app.def:5', command: 'cp /opt/a-1.2 /dst' });
  });

  test('the shell\'s own line number wins over the trace when the command failed before it was traced', () => {
    // A redirection into a missing directory fails before `sh -x` prints the command; the last trace line is from
    // the builder's environment setup.
    const tail = ['INFO:    Running post scriptlet', '+ prev=null', '+ printf %s%s\\n  null', "/.post.script: line 2: can't create /opt/x: nonexistent directory", fatal('post', 1)];
    expect(locateScriptletFailure(tail, ['post', 'post'], TWO_STAGES, 'app.def')).toEqual({ section: 'post', status: 1, where: 'app.def:15', command: 'test -f /missing' });
  });

  test('no scriptlet failure: undefined', () => {
    expect(locateScriptletFailure(['FATAL:   Unable to pull docker://x: manifest unknown'], [], TWO_STAGES, 'app.def')).toBeUndefined();
  });

  test('a section the definition does not have names the file', () => {
    expect(locateScriptletFailure([fatal('setup', 2)], ['setup'], TWO_STAGES, 'app.def')).toEqual({ section: 'setup', status: 2, where: 'app.def' });
  });
});

describe('scriptletStarted and inUserTerms', () => {
  test('reads the builder\'s scriptlet lines', () => {
    expect(scriptletStarted('INFO:    Running post scriptlet')).toBe('post');
    expect(scriptletStarted('INFO:    Running setup scriptlet')).toBe('setup');
    expect(scriptletStarted('+ echo Running post scriptlet-ish')).toBeUndefined();
  });

  test('the temporary recipe is named as the user\'s definition', () => {
    const lines = ['FATAL:   Unable to build from /tmp/build-image-1-x/build.def: bad section'];
    expect(inUserTerms(lines, '/tmp/build-image-1-x/build.def', '/src/app.def')).toEqual(['FATAL:   Unable to build from /src/app.def: bad section']);
    expect(inUserTerms(lines, '/tmp/build-image-1-x/build.def', undefined)).toEqual(lines);
  });
});
