// The test cluster's pyxis: provisioning builds enroot and pyxis from ../shared/vendor, and a job started with
// `srun --container-image` runs inside the squashfs image on the dgx2 partition with the node's two GPUs.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { mkdirSync, symlinkSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { startSlurm, type Slurm } from '../helpers/slurm.js';
import { tempDir } from '../helpers/tools.js';

let slurm: Slurm;
const { dir, cleanup } = tempDir('bi-pyxis-');

beforeAll(async () => {
  slurm = await startSlurm({ pyxis: true });
}, 120_000);
afterAll(async () => {
  await slurm?.stop();
  cleanup();
});

test('srun --container-image runs a squashfs image with the image environment and the GPUs', () => {
  const root = path.join(dir, 'root');
  mkdirSync(path.join(root, 'bin'), { recursive: true });
  mkdirSync(path.join(root, 'etc'));
  copyFileSync('/bin/busybox', path.join(root, 'bin', 'busybox'));
  symlinkSync('busybox', path.join(root, 'bin', 'sh'));
  writeFileSync(path.join(root, 'etc', 'environment'), 'FOO=bar\n');
  const image = path.join(dir, 'bb.sqsh');
  const mk = spawnSync('mksquashfs', [root, image, '-quiet', '-noappend', '-all-root'], { encoding: 'utf8' });
  expect(mk.status).toBe(0);
  const r = spawnSync('srun', ['-p', 'dgx2', '--gres=gpu:2', `--container-image=${image}`, 'sh', '-c', 'echo "$CUDA_VISIBLE_DEVICES $FOO"; busybox ls /bin'],
    { env: slurm.env, encoding: 'utf8', timeout: 60_000 });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
  expect(r.stdout.split('\n')[0]).toBe('0,1 bar');
}, 120_000);
