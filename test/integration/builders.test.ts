// `builder: enroot` on the real enroot (a registry with htpasswd credentials, the result run under pyxis on the
// test Slurm) and `builder: u2cb` against a double of the centre's client that builds real SIFs with the real
// apptainer. The action runs from a bundle of the sources made in a temporary directory (dist/ is not rebuilt).
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readSifFile } from '../../src/image/sif.js';
import { LABELS } from '../../src/build/provenance.js';
import { readPrivileges, useFakeroot } from '../../src/build/builder.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startSlurm, type Slurm } from '../helpers/slurm.js';
import { requireTools, tempDir } from '../helpers/tools.js';
import { runBundledActionAsync, type ActionRun } from '../helpers/action.js';

jest.setTimeout(180_000);

const PASSWORD = 'enr00t-s3cr3t-pw';
const { dir, cleanup } = tempDir('bi-builders-');
const bundle = path.join(dir, 'bundle');
const enrootData = path.join(dir, 'enroot-data');
const tmpBase = path.join(dir, 'tmp');
const serviceState = path.join(dir, 'u2cb-state');
const bin = path.join(dir, 'bin');
let open: Registry;
let authed: Registry;
/** The same storage behind a password enroot's .credentials parser would run through the shell. */
let dollar: Registry;
const DOLLAR_PASSWORD = '$(touch${IFS}/tmp/bi-pwned)*pw';
let slurm: Slurm;

beforeAll(async () => {
  requireTools('enroot', 'apptainer', 'unsquashfs', 'srun');
  execFileSync(process.execPath, ['scripts/bundle.mjs', '--outdir', bundle], { stdio: 'pipe' });
  open = await startRegistry();
  open.pushBusybox('tiny', '1.0', { GREETING: 'from-the-registry' });
  // enroot 4.1.2 reads Docker v2 schema 2 manifests only.
  execFileSync('skopeo', ['copy', '--format', 'v2s2', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${open.host}/tiny:1.0`, `docker://${open.host}/tiny:v2s2`], { stdio: 'pipe' });
  authed = await startRegistry({ storage: open.dataDir, htpasswd: { username: 'ci', password: PASSWORD } });
  dollar = await startRegistry({ storage: open.dataDir, htpasswd: { username: 'ci', password: DOLLAR_PASSWORD } });
  for (const d of [enrootData, tmpBase, serviceState, bin]) mkdirSync(d, { recursive: true });
  symlinkSync(path.resolve('test/helpers/u2cb'), path.join(bin, 'u2cb'));
  slurm = await startSlurm({ pyxis: true });
}, 180_000);

afterAll(async () => {
  await slurm?.stop();
  await authed?.stop();
  await dollar?.stop();
  await open?.stop();
  cleanup();
});

/** The action from the temporary bundle; the environment sets ENROOT_DATA_PATH so the test can list containers. */
function runAction(inputs: Record<string, string>, env: Record<string, string> = {}, options: { path?: string } = {}): { run: Promise<ActionRun> } {
  return {
    run: runBundledActionAsync(
      { 'tmp-dir': tmpBase, ...inputs },
      { cwd: dir, script: path.join(bundle, 'index.js'), path: options.path, env: { ENROOT_DATA_PATH: enrootData, U2CB_STATE_DIR: serviceState, ...env } },
    ),
  };
}

function enrootList(): string[] {
  const out = execFileSync('enroot', ['list'], { env: { ...process.env, ENROOT_DATA_PATH: enrootData }, encoding: 'utf8' });
  return out.split(/\s+/).filter(Boolean);
}

function errors(run: ActionRun): string[] {
  return run.stdout.split('\n').filter((l) => l.startsWith('::error')).map((l) => l.replace(/%0A/g, '\n').replace(/%25/g, '%'));
}

function srunImage(image: string, command: string): string {
  const r = spawnSync('srun', ['-p', 'dgx2', `--container-image=${image}`, 'sh', '-c', command], { env: slurm.env, encoding: 'utf8', timeout: 60_000 });
  expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
  return r.stdout.trim();
}

function sqshLabels(image: string): Record<string, string> {
  return JSON.parse(execFileSync('unsquashfs', ['-cat', image, '.singularity.d/labels.json'], { encoding: 'utf8' })) as Record<string, string>;
}

/** The test's processes whose command line contains `text` (the test's own `ps` excluded). */
function processesWith(text: string): string[] {
  return execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(text) && !l.startsWith('ps '));
}

async function waitFor(check: () => boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  expect(check()).toBe(true);
}

/** Runs the command line from the bundle as a child we can signal (a signal ends it with 128 + its number). */
function startCli(args: string[], extraEnv: Record<string, string> = {}): { child: ReturnType<typeof spawn>; output: () => string; exited: Promise<number | null> } {
  const env: NodeJS.ProcessEnv = { ...process.env, ENROOT_DATA_PATH: enrootData, U2CB_STATE_DIR: serviceState, PATH: `${bin}:${process.env.PATH}`, ...extraEnv };
  const child = spawn(process.execPath, [path.join(bundle, 'cli.js'), 'build', '--tmp-dir', tmpBase, '--registry-insecure', ...args], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => (out += d));
  child.stderr!.on('data', (d) => (out += d));
  return { child, output: () => out, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
}

describe('builder: enroot', () => {
  test('from docker:// with htpasswd credentials: runs under pyxis; no container left; the password in no argv, log or file', async () => {
    const output = path.join(dir, 'from-source.sqsh');
    const seen: string[] = [];
    const { run } = runAction({ builder: 'enroot', source: `docker://${authed.host}/tiny:v2s2`, 'registry-insecure': 'true', 'registry-username': 'ci', 'registry-password': PASSWORD, output });
    let done = false;
    const sampled = run.finally(() => (done = true));
    let importSeen = false;
    while (!done) {
      const args = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n');
      seen.push(...args.filter((l) => l.includes(PASSWORD)));
      importSeen ||= args.some((l) => l.includes('enroot import'));
      await new Promise((r) => setTimeout(r, 100));
    }
    const result = await sampled;
    expect(errors(result)).toEqual([]);
    expect(result.status).toBe(0);
    expect(seen).toEqual([]);
    expect(importSeen).toBe(true);
    expect(result.outputs.image).toBe(output);
    expect(srunImage(output, 'echo $GREETING')).toBe('from-the-registry');
    expect(sqshLabels(output)[LABELS.buildKey]).toBe(result.outputs['build-key']);
    expect(enrootList()).toEqual([]);
    expect(readdirSync(tmpBase)).toEqual([]);
    const visible = result.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::')).join('\n');
    expect(visible).not.toContain(PASSWORD);
    expect(readFileSync(output).includes(PASSWORD)).toBe(false);
    expect(spawnSync('grep', ['-rlF', PASSWORD, dir], { encoding: 'utf8' }).stdout).toBe('');
  });

  test('a password starting with $ reaches the registry as written, not run by enroot\'s credentials parser', async () => {
    const output = path.join(dir, 'dollar.sqsh');
    const result = await runAction({ builder: 'enroot', source: `docker://${dollar.host}/tiny:v2s2`, 'registry-insecure': 'true', 'registry-username': 'ci', 'registry-password': DOLLAR_PASSWORD, output }).run;
    expect(errors(result)).toEqual([]);
    expect(existsSync('/tmp/bi-pwned')).toBe(false);
    expect(sqshLabels(output)[LABELS.buildKey]).toBe(result.outputs['build-key']);
    expect(spawnSync('grep', ['-rlF', DOLLAR_PASSWORD, dir], { encoding: 'utf8' }).stdout).toBe('');
    expect(readdirSync(tmpBase)).toEqual([]);
  });

  test('from a definition: %post and %environment are in the image, which runs under pyxis; no container left', async () => {
    const def = path.join(dir, 'post.def');
    writeFileSync(def, `Bootstrap: docker\nFrom: ${open.host}/tiny:v2s2\n\n%post\n    echo made-by-post > /post-file\n\n%environment\n    export FOO=bar-from-env\n\n%runscript\n    echo runscript says $FOO\n`);
    const output = path.join(dir, 'from-def.sqsh');
    const result = await runAction({ builder: 'enroot', definition: def, 'registry-insecure': 'true', output }).run;
    expect(errors(result)).toEqual([]);
    expect(srunImage(output, 'cat /post-file; echo $FOO $GREETING')).toBe('made-by-post\nbar-from-env from-the-registry');
    expect(execFileSync('unsquashfs', ['-cat', output, 'etc/rc'], { encoding: 'utf8' })).toContain('echo runscript says $FOO');
    expect(sqshLabels(output)[LABELS.buildKey]).toBe(result.outputs['build-key']);
    expect(enrootList()).toEqual([]);
  });

  test('a failing %post: exit 1, the error names the definition line; no container, no output', async () => {
    const def = path.join(dir, 'fails.def');
    writeFileSync(def, `Bootstrap: docker\nFrom: ${open.host}/tiny:v2s2\n\n%post\n    echo about to fail\n    exit 3\n`);
    const output = path.join(dir, 'fails.sqsh');
    const result = await runAction({ builder: 'enroot', definition: def, 'registry-insecure': 'true', output }).run;
    expect(result.status).toBe(1);
    expect(errors(result)).toEqual([expect.stringMatching(/^::error::%post failed at `exit 3` \(\S+\/fails\.def:6\), exit status 3:[\s\S]*about to fail/)]);
    expect(existsSync(output)).toBe(false);
    expect(enrootList()).toEqual([]);
    expect(readdirSync(tmpBase)).toEqual([]);
  });

  test('SIGTERM during %post: exit 143, no container, no %post process, no output', async () => {
    const def = path.join(dir, 'slow.def');
    writeFileSync(def, `Bootstrap: docker\nFrom: ${open.host}/tiny:v2s2\n\n%post\n    echo post-started\n    sleep 4251\n`);
    const output = path.join(dir, 'slow.sqsh');
    const run = startCli(['--builder', 'enroot', '--definition', def, '--output', output]);
    await waitFor(() => /^\s*post-started$/m.test(run.output()));
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(143);
    expect(run.output()).toMatch(/build cancelled/);
    await waitFor(() => processesWith('sleep 4251').length === 0, 15_000);
    expect(enrootList()).toEqual([]);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(tmpBase)).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.includes('.partial-'))).toEqual([]);
  });

  test('without enroot on PATH: exit 1, one message naming the input, nothing left behind', async () => {
    const output = path.join(dir, 'none.sqsh');
    const result = await runAction({ builder: 'enroot', source: `docker://${open.host}/tiny:v2s2`, 'registry-insecure': 'true', output }, {}, { path: '/usr/bin:/bin' }).run;
    expect(result.status).toBe(1);
    expect(errors(result)).toEqual([expect.stringMatching(/^::error::builder: enroot is not installed \(not found on PATH\); install enroot/)]);
    expect(result.stdout).not.toMatch(/^\s+at /m);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(tmpBase)).toEqual([]);
  });
});

describe('builder: u2cb', () => {
  const u2cbEnv = async (): Promise<Record<string, string>> => {
    const { fakeroot } = useFakeroot('auto', await readPrivileges());
    return { U2CB_APPTAINER_FLAGS: `--no-https${fakeroot ? ' --fakeroot' : ''}` };
  };

  test('the image arrives from the service, verified, with the build key; nothing is left on the service', async () => {
    const output = path.join(dir, 'service.sif');
    const result = await runAction({ builder: 'u2cb', source: `docker://${open.host}/tiny:1.0`, 'registry-insecure': 'true', output }, await u2cbEnv(), { path: `${bin}:${process.env.PATH}` }).run;
    expect(errors(result)).toEqual([]);
    expect(result.stdout).toMatch(/u2cb: build of bi\w+ submitted/);
    expect(result.stdout).toMatch(/u2cb: deleted bi\w+/);
    const info = await readSifFile(output);
    expect(info.labels[LABELS.buildKey]).toBe(result.outputs['build-key']);
    expect(result.outputs.sha256).toBe(execFileSync('sha256sum', [output], { encoding: 'utf8' }).split(' ')[0]);
    expect(readdirSync(serviceState)).toEqual([]);
    expect(readdirSync(tmpBase)).toEqual([]);
  });

  test('a build that fails on the service: exit 1 at build-timeout, naming it; nothing left on the service', async () => {
    const def = path.join(dir, 'service-fails.def');
    writeFileSync(def, `Bootstrap: docker\nFrom: ${open.host}/tiny:1.0\n\n%post\n    exit 3\n`);
    const output = path.join(dir, 'service-fails.sif');
    const result = await runAction({ builder: 'u2cb', definition: def, 'registry-insecure': 'true', output, 'build-timeout': '10s' }, await u2cbEnv(), { path: `${bin}:${process.env.PATH}` }).run;
    expect(result.status).toBe(1);
    expect(errors(result)).toEqual([expect.stringMatching(/^::error::build timed out after 10\.0 s \(build-timeout\); the U2CB service had not listed bi\w+ \(its build failed or is still running\); it was deleted from the service$/)]);
    expect(existsSync(output)).toBe(false);
    expect(readdirSync(serviceState)).toEqual([]);
  });

  test('SIGTERM while the service builds: exit 143, the service build stopped and deleted', async () => {
    const def = path.join(dir, 'service-slow.def');
    writeFileSync(def, `Bootstrap: docker\nFrom: ${open.host}/tiny:1.0\n\n%post\n    sleep 4252\n`);
    const run = startCli(['--builder', 'u2cb', '--definition', def, '--output', path.join(dir, 'service-slow.sif')], await u2cbEnv());
    await waitFor(() => processesWith('sleep 4252').length > 0);
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(143);
    expect(run.output()).toMatch(/build cancelled/);
    await waitFor(() => processesWith('sleep 4252').length === 0, 15_000);
    expect(readdirSync(serviceState)).toEqual([]);
  });

  test('the double follows the documented command lines: unknown flags, missing and unknown names are refused', () => {
    const u2cb = (...args: string[]) => spawnSync(path.join(bin, 'u2cb'), args, { env: { ...process.env, U2CB_STATE_DIR: serviceState }, encoding: 'utf8' });
    expect(u2cb('download', '-n', 'nosuch')).toMatchObject({ status: 1, stderr: 'u2cb: download: no image named nosuch\n' });
    expect(u2cb('create', '-n', 'x', '-b', 'docker://a/b', '--force')).toMatchObject({ status: 2, stderr: expect.stringContaining("unknown flag or argument '--force'") });
    expect(u2cb('delete')).toMatchObject({ status: 2, stderr: expect.stringContaining('-n NAME is required') });
    expect(u2cb('list', '-n', 'x')).toMatchObject({ status: 2, stderr: expect.stringContaining("unknown flag '-n'") });
    expect(u2cb('list')).toMatchObject({ status: 0, stdout: '\n' });
  });
});
