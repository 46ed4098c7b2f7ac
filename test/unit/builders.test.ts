// The pure parts of builders enroot and u2cb: what enroot is asked to import, the credentials file's lines, what
// the recipe asks of enroot, and what the U2CB service is given and answers.
import { describe, expect, test } from '@jest/globals';
import type { BuildConfig } from '../../src/config/config.js';
import { credentialLines, enrootRecipe, enrootUri } from '../../src/build/enroot.js';
import { listedNames, serviceName, serviceRecipe } from '../../src/build/u2cb.js';
import { parseImageRef } from '../../src/build/source.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;
const config = { buildArgs: { VERSION: '1.2' }, definition: '/w/image.def' } as unknown as BuildConfig;

describe('builder enroot', () => {
  test('imports the pinned digest in the docker://[USER@]REGISTRY/IMAGE@DIGEST form', () => {
    expect(enrootUri(parseImageRef(`127.0.0.1:5000/tiny@${DIGEST}`), 'ci')).toBe(`docker://ci@127.0.0.1:5000/tiny@${DIGEST}`);
    expect(enrootUri(parseImageRef(`ubuntu@${DIGEST}`))).toBe(`docker://registry-1.docker.io/library/ubuntu@${DIGEST}`);
  });

  test('credentials name the registry host (without port) and the token services of Docker Hub and NGC', () => {
    expect(credentialLines('127.0.0.1:5000', 'ci', 'pw', '/c/.password')).toEqual(['machine 127.0.0.1 login ci password pw']);
    expect(credentialLines('registry-1.docker.io', 'me', 'pw', '/c/.password').map((l) => l.split(' ')[1])).toEqual(['registry-1.docker.io', 'auth.docker.io']);
    expect(credentialLines('nvcr.io', '$oauthtoken', 'key', '/c/.password')).toEqual(['machine nvcr.io login $oauthtoken password key', 'machine authn.nvidia.com login $oauthtoken password key']);
  });

  test('a password enroot would run through the shell is read from a file; white space is refused, naming the input', () => {
    expect(credentialLines('r.io', 'u', '$(reboot)', '/c/.password')).toEqual(["machine r.io login u password $(:)-n;cat '/c/.password';echo"]);
    expect(() => credentialLines('r.io', 'u', 'two words', '/c/.password')).toThrow(/^registry-password: contains white space/);
  });

  test('the recipe gives the base, the section bodies with build arguments, and the labels', () => {
    const recipe = `Bootstrap: docker\nFrom: r.io/img@${DIGEST}\n\n%post\n    echo {{ VERSION }}\n\n%environment\n    export A=1\n\n%labels\n    a.b c d\n`;
    expect(enrootRecipe(recipe, config, recipe)).toEqual({
      base: { registry: 'r.io', repository: 'img', digest: DIGEST, tag: undefined },
      post: '    echo 1.2',
      environment: '    export A=1',
      runscript: undefined,
      labels: { 'a.b': 'c d' },
    });
  });

  test.each([
    ['%files', 'Bootstrap: docker\nFrom: x\n%files\n    a /a\n', /image\.def:3: %files is not applied by builder enroot/],
    ['two stages', 'Bootstrap: docker\nFrom: x\nStage: one\n\nBootstrap: docker\nFrom: y\n', /image\.def:5: builder enroot builds single-stage definitions only/],
    ['another bootstrap agent', 'Bootstrap: localimage\nFrom: x.sif\n', /image\.def:1: builder enroot imports from a registry \(Bootstrap: docker\); got Bootstrap: localimage/],
  ])('refuses %s, naming the line', (_name, text, message) => {
    expect(() => enrootRecipe(`Bootstrap: docker\nFrom: r.io/img@${DIGEST}\n`, config, text)).toThrow(message);
  });
});

describe('builder u2cb', () => {
  test('names are unique letters and digits, starting with a letter', () => {
    const a = serviceName(42);
    expect(a).toMatch(/^bi42x[0-9a-f]{8}$/);
    expect(serviceName(42)).not.toBe(a);
  });

  test('list prints the names on one line', () => {
    expect(listedNames('one two  three\n')).toEqual(['one', 'two', 'three']);
    expect(listedNames('\n')).toEqual([]);
  });

  test('the service gets the build arguments in place, and no %files from this machine', () => {
    expect(serviceRecipe('From: x\n%post\n    echo {{ VERSION }}\n', { VERSION: '1.2' }, undefined, 'f.def')).toBe('From: x\n%post\n    echo 1.2\n');
    expect(() => serviceRecipe('', {}, 'Bootstrap: docker\nFrom: x\n%files\n    a /a\n', 'f.def')).toThrow(/^definition f\.def:3: %files copies files from this machine/);
  });
});
