import { describe, expect, test } from '@jest/globals';
import { enrootContainer, enrootEnvironment, parseResources } from '../../src/util/resources.js';

describe('enroot containers as held resources', () => {
  test('keep only the variables that locate the container (ENROOT_*, XDG_*), never the rest of the environment', () => {
    const held = enrootContainer('build-image-smoke-12-ab', { ENROOT_DATA_PATH: '/d', XDG_DATA_HOME: '/x', HOME: '/h', TOKEN: 'secret' });
    expect(held).toEqual({ kind: 'enroot-container', name: 'build-image-smoke-12-ab', env: { ENROOT_DATA_PATH: '/d', XDG_DATA_HOME: '/x' } });
  });

  test("are removed under the environment they were created with, not the post step's own enroot settings", () => {
    const held = enrootContainer('c', { ENROOT_DATA_PATH: '/d' });
    if (held.kind !== 'enroot-container') throw new Error('not an enroot container');
    expect(enrootEnvironment(held, { PATH: '/bin', ENROOT_DATA_PATH: '/elsewhere', ENROOT_RUNTIME_PATH: '/r' })).toEqual({ PATH: '/bin', ENROOT_DATA_PATH: '/d' });
  });

  test('read back from saved state; malformed entries are dropped', () => {
    const good = { kind: 'enroot-container', name: 'build-image-smoke-12-ab', env: { ENROOT_DATA_PATH: '/d' } };
    const saved = JSON.stringify([
      good,
      { ...good, name: '-rf' },
      { ...good, name: '../x' },
      { ...good, env: { PATH: '/bin' } },
      { ...good, env: { ENROOT_DATA_PATH: 1 } },
      { kind: 'enroot-container', name: 'n' },
    ]);
    expect(parseResources(saved)).toEqual([good]);
  });
});
