// `launcher: direct` with a .sqsh cut short, on the real enroot: the container `enroot create` made for the smoke
// test is gone afterwards (`enroot list` under the same ENROOT_DATA_PATH) when the CLI gets SIGTERM mid-payload, and
// when the action's main step is killed with SIGKILL, once its post step has run, and when the CLI is killed with
// SIGKILL, once the next direct smoke test under the same data path has run. A small image keeps them cheap.
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { convertSifToSqsh } from '../../src/image/sqsh.js';
import { parseOutputs } from '../helpers/action.js';
import { requireTools, tempDir } from '../helpers/tools.js';

const work = tempDir('bi-smoke-enroot-cut-');
const bundle = path.join(work.dir, 'bundle');
const image = path.join(work.dir, 'busybox.sqsh');
/** enroot's paths private to this file, as a runner's environment would set them. */
const enrootEnv = Object.fromEntries(['DATA', 'RUNTIME', 'CACHE', 'TEMP'].map((p) => [`ENROOT_${p}_PATH`, path.join(work.dir, 'enroot', p.toLowerCase())]));

beforeAll(async () => {
  requireTools('enroot', 'unsquashfs', 'mksquashfs');
  execFileSync(process.execPath, ['scripts/bundle.mjs', '--outdir', bundle], { stdio: 'pipe' });
  for (const dir of Object.values(enrootEnv)) mkdirSync(dir, { recursive: true });
  await convertSifToSqsh({ sif: path.resolve('test/fixtures/sif/busybox-gzip.sif'), output: image });
}, 120_000);

afterAll(() => {
  // Whatever a failed test left, so that its data path can be removed.
  for (const name of containers()) spawnSync('enroot', ['remove', '-f', name], { env: { ...process.env, ...enrootEnv } });
  work.cleanup();
});

function containers(): string[] {
  const out = execFileSync('enroot', ['list'], { env: { ...process.env, ...enrootEnv }, encoding: 'utf8' });
  return out.split('\n').filter(Boolean);
}

function running(text: string): boolean {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').some((l) => l.includes(text) && !l.startsWith('ps '));
}

async function until(check: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check() && Date.now() < end) await new Promise((r) => setTimeout(r, 100));
  expect(check()).toBe(true);
}

/** Starts a bundled entry point; resolves `exited` with its status (null when killed by a signal). */
function start(script: string, args: string[], env: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [path.join(bundle, script), ...args], { cwd: work.dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code))) };
}

/** The CLI's direct smoke test of the .sqsh with this command. */
const smoke = (command: string): string[] => ['smoke', '--image', image, '--launcher', 'direct', '--preset', 'none', '--smoke-command', command, '--gpus', '0'];

/** kill -9 once the payload runs: the payload stops with the tool (its process group's watchdog), the container stays. */
async function killMidPayload(run: ReturnType<typeof start>, payload: string): Promise<{ name: string; pid: number }> {
  await until(() => run.output().includes('started'));
  const [name] = containers();
  run.child.kill('SIGKILL');
  await run.exited;
  await until(() => !running(payload), 30_000);
  expect(containers()).toEqual([name]);
  return { name, pid: run.child.pid! };
}

test('SIGTERM to the CLI while the payload runs in the enroot container: exit 143, no container of the run left', async () => {
  const run = start('cli.js', smoke('echo started; sleep 4252'), { ...process.env, ...enrootEnv });
  await until(() => run.output().includes('started'));
  // The container exists while the payload runs, so the check below can fail.
  expect(containers()).toEqual([expect.stringMatching(/^build-image-smoke-\d+-[0-9a-f]+$/)]);
  run.child.kill('SIGTERM');
  expect(await run.exited).toBe(143);
  expect(run.output()).toMatch(/^error: smoke test cancelled/m);
  expect(containers()).toEqual([]);
  await until(() => !running('sleep 4252'), 15_000);
}, 90_000);

test("kill -9 of the action's main step mid-payload: the post step removes the enroot container from the same data path", async () => {
  const state = path.join(work.dir, 'state');
  writeFileSync(state, '');
  const inputs = { stage: 'smoke', image, launcher: 'direct', preset: 'none', 'smoke-command': 'echo started; sleep 4253', gpus: '0' };
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...enrootEnv, GITHUB_STATE: state, GITHUB_OUTPUT: path.join(work.dir, 'out') };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  const { name } = await killMidPayload(start('index.js', [], env), 'sleep 4253');
  const saved = parseOutputs(readFileSync(state, 'utf8')).resources;
  expect(JSON.parse(saved)).toContainEqual({ kind: 'enroot-container', name, env: enrootEnv });
  // The post step runs with the runner's environment, which need not name enroot's paths: the state does.
  const post = spawnSync(process.execPath, [path.join(bundle, 'post.js')], { env: { PATH: process.env.PATH, HOME: process.env.HOME, STATE_resources: saved }, encoding: 'utf8', timeout: 60_000 });
  expect(post.status).toBe(0);
  expect(post.stdout).toContain(`removed the enroot container ${name}`);
  expect(containers()).toEqual([]);
}, 90_000);

test('kill -9 of the CLI mid-payload: the next direct smoke test under the same data path removes the dead run\'s container', async () => {
  const env = { ...process.env, ...enrootEnv };
  const { name, pid } = await killMidPayload(start('cli.js', smoke('echo started; sleep 4254'), env), 'sleep 4254');
  const next = spawnSync(process.execPath, [path.join(bundle, 'cli.js'), ...smoke('true')], { cwd: work.dir, env, encoding: 'utf8', timeout: 60_000 });
  expect(next.status).toBe(0);
  expect(next.stdout + next.stderr).toContain(`removed the enroot container ${name}, left by a smoke test that died (process ${pid})`);
  expect(containers()).toEqual([]);
}, 90_000);
