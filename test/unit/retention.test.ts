// Which old images promotion deletes: a pure plan over a directory listing.
import { describe, expect, test } from '@jest/globals';
import { imageFamily, planRetention } from '../../src/publish/promote.js';

describe('imageFamily', () => {
  test('is the name before the version', () => {
    expect(imageFamily('pytorch-24.10.sif')).toBe('pytorch');
    expect(imageFamily('pytorch-24.11-py3.sif')).toBe('pytorch');
    expect(imageFamily('pytorch-19.10-py3.simg')).toBe('pytorch');
    expect(imageFamily('gromacs-2018.2.simg')).toBe('gromacs');
    expect(imageFamily('cuda_12.4.sif')).toBe('cuda');
    expect(imageFamily('deep-learning-v2.1.sif')).toBe('deep-learning');
    expect(imageFamily('lammps.sif')).toBe('lammps');
  });
});

describe('planRetention', () => {
  const files = [
    { name: 'pytorch-24.01.sif', mtime: 1 },
    { name: 'pytorch-24.04.sif', mtime: 2 },
    { name: 'pytorch-24.07.sif', mtime: 3 },
    { name: 'pytorch-24.10.sif', mtime: 4 },
    { name: 'pytorch-24.11.sif', mtime: 5 },
    { name: 'pytorch-lightning-2.1.sif', mtime: 0 },
    { name: 'gromacs-2018.2.sif', mtime: 0 },
    { name: '.pytorch-24.11.sif.lock', mtime: 9 },
    { name: 'pytorch-notes.txt', mtime: 0 },
  ];

  test('keeps the newest `keep` of the family and deletes the rest, leaving other families alone', () => {
    expect(planRetention(files, { family: 'pytorch', keep: 2, live: 'pytorch-24.11.sif', protected: [] })).toEqual({
      keep: ['pytorch-24.11.sif', 'pytorch-24.10.sif'],
      delete: ['pytorch-24.07.sif', 'pytorch-24.04.sif', 'pytorch-24.01.sif'],
    });
  });

  test('never deletes the live file, the alias target or a protected file, even beyond `keep`', () => {
    // The live file is older than the others (a re-promotion of an old version).
    const plan = planRetention(files, { family: 'pytorch', keep: 1, live: 'pytorch-24.04.sif', protected: ['pytorch-24.01.sif', 'pytorch-24.07.sif'] });
    expect(plan.delete).toEqual(['pytorch-24.10.sif']);
    expect(plan.keep).toEqual(['pytorch-24.11.sif', 'pytorch-24.07.sif', 'pytorch-24.04.sif', 'pytorch-24.01.sif']);
  });

  test('keep 0 keeps everything', () => {
    expect(planRetention(files, { family: 'pytorch', keep: 0, live: 'pytorch-24.11.sif', protected: [] }).delete).toEqual([]);
  });

  test("a version's SIF and .sqsh are kept or deleted together", () => {
    const both = [3, 2, 1].flatMap((v) => [
      { name: `pytorch-24.0${v}.sif`, mtime: v * 10 },
      { name: `pytorch-24.0${v}.sqsh`, mtime: v * 10 + 1 },
    ]);
    expect(planRetention(both, { family: 'pytorch', keep: 2, live: 'pytorch-24.03.sif', protected: [] })).toEqual({
      keep: ['pytorch-24.03.sqsh', 'pytorch-24.03.sif', 'pytorch-24.02.sqsh', 'pytorch-24.02.sif'],
      delete: ['pytorch-24.01.sqsh', 'pytorch-24.01.sif'],
    });
    // The alias target (or a path the docs list) keeps its version in both formats; a lone old .sqsh goes with keep.
    const lone = [...both, { name: 'pytorch-23.12.sqsh', mtime: 5 }];
    expect(planRetention(lone, { family: 'pytorch', keep: 1, live: 'pytorch-24.03.sif', protected: ['pytorch-24.01.sqsh'] })).toEqual({
      keep: ['pytorch-24.03.sqsh', 'pytorch-24.03.sif', 'pytorch-24.01.sqsh', 'pytorch-24.01.sif'],
      delete: ['pytorch-24.02.sqsh', 'pytorch-24.02.sif', 'pytorch-23.12.sqsh'],
    });
  });

  test('equal mtimes fall back to the version order of the names', () => {
    const same = ['pytorch-24.9.sif', 'pytorch-24.10.sif', 'pytorch-24.11.sif'].map((name) => ({ name, mtime: 7 }));
    expect(planRetention(same, { family: 'pytorch', keep: 2, live: 'pytorch-24.11.sif', protected: [] }).delete).toEqual(['pytorch-24.9.sif']);
  });
});
