// The build stage end to end: real apptainer, a real registry on loopback, the action's entry point (sources
// and bundle) and the CLI, with what a user sees checked: files, labels, outputs, summaries, errors.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { readSifFile } from '../../src/image/sif.js';
import { LABELS } from '../../src/build/provenance.js';
import { parseImageRef, resolveManifestDigest } from '../../src/build/source.js';
import { freePort, startRegistry, type Registry } from '../helpers/registry.js';
import { execFlags, requireTools, tempDir } from '../helpers/tools.js';
import { parseOutputs, runBundledAction, type ActionRun } from '../helpers/action.js';

jest.setTimeout(240_000);

let registry: Registry;
let work: { dir: string; cleanup: () => void };
let digest: string;
let closedPort: number;

const TOP_DIR = `/bi-top-${process.pid}`;
const ACTIONS_ENV = {
  GITHUB_REPOSITORY: 'sjtu-hpc/images',
  GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
  GITHUB_RUN_ID: '4242',
  GITHUB_SERVER_URL: 'https://github.com',
};

beforeAll(async () => {
  requireTools('apptainer');
  registry = await startRegistry();
  digest = registry.pushBusybox('tiny', '1.0', { GREETING: 'from-the-registry' });
  work = tempDir('bi-build-');
  closedPort = await freePort();
});

afterAll(async () => {
  await registry?.stop();
  work?.cleanup();
});

function runAction(inputs: Record<string, string>, options: { path?: string; cwd?: string } = {}): ActionRun {
  return runBundledAction(inputs, { ...options, cwd: options.cwd ?? work.dir, env: ACTIONS_ENV });
}

function inspectLabels(image: string): Record<string, string> {
  const json = execFileSync('apptainer', ['inspect', '--json', image], { encoding: 'utf8' });
  return JSON.parse(json).data.attributes.labels;
}

function apptainerExec(image: string, command: string): string {
  return execFileSync('apptainer', ['exec', ...execFlags(), image, '/bin/sh', '-c', command], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

function leftovers(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.endsWith('.sif') || f.includes('.partial-'));
}

describe('building from a registry through the bundled action', () => {
  let run: ActionRun;
  let image: string;

  beforeAll(() => {
    image = path.join(work.dir, 'tiny.sif');
    run = runAction({ name: 'tiny', source: `docker://${registry.host}/tiny:1.0`, 'registry-insecure': 'true' });
  });

  test('succeeds and sets the image, sha256, size, source-digest and build-key outputs', () => {
    expect(run.status).toBe(0);
    expect(run.outputs.image).toBe(image);
    expect(existsSync(image)).toBe(true);
    const sha = execFileSync('sha256sum', [image], { encoding: 'utf8' }).split(' ')[0];
    expect(run.outputs.sha256).toBe(sha);
    expect(Number(run.outputs.size)).toBe(readFileSync(image).length);
    expect(run.outputs['source-digest']).toBe(digest);
    expect(run.outputs['build-key']).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  test('the image was pulled from the registry: the environment of the pushed image is inside', () => {
    expect(apptainerExec(image, 'echo $GREETING').trim()).toBe('from-the-registry');
  });

  test('apptainer inspect and the SIF reader show the same provenance labels', async () => {
    const fromApptainer = inspectLabels(image);
    const fromReader = (await readSifFile(image)).labels;
    expect(fromReader).toEqual(fromApptainer);
    expect(fromApptainer).toMatchObject({
      [LABELS.source]: 'https://github.com/sjtu-hpc/images',
      [LABELS.revision]: ACTIONS_ENV.GITHUB_SHA,
      [LABELS.sourceUri]: `docker://${registry.host}/tiny:1.0`,
      [LABELS.sourceDigest]: digest,
      [LABELS.runUrl]: 'https://github.com/sjtu-hpc/images/actions/runs/4242',
      [LABELS.buildKey]: run.outputs['build-key'],
    });
    expect(fromApptainer[LABELS.builder]).toMatch(/^apptainer \d+\.\d+/);
    expect(new Date(fromApptainer[LABELS.created]).getTime()).toBeGreaterThan(Date.now() - 600_000);
  });

  test('the job summary shows source and digest, builder, size and sha256', () => {
    expect(run.summary).toContain('## build-image: build');
    expect(run.summary).toContain(digest);
    expect(run.summary).toContain(run.outputs.sha256);
    expect(run.summary).toMatch(/\| Builder \| apptainer \d/);
    expect(run.summary).toMatch(/\| Size \| .*\(\d+ bytes\)/);
  });

  test('phases are log groups', () => {
    for (const group of ['Prepare', 'Resolve source', 'Build with apptainer', 'Verify image']) {
      expect(run.stdout).toContain(`::group::${group}`);
    }
  });

  test('the squashfs is gzip-compressed, for older runtimes', async () => {
    expect((await readSifFile(image)).primary?.compression).toBe('gzip');
  });
});

describe('other sources: archives and a local SIF', () => {
  const cases: [string, () => string][] = [
    ['oci-archive', () => {
      const tar = path.join(work.dir, 'tiny-oci.tar');
      execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.host}/tiny:1.0`, `oci-archive:${tar}`], { stdio: 'pipe' });
      return `oci-archive:${tar}`;
    }],
    ['docker-archive', () => {
      const tar = path.join(work.dir, 'tiny-docker.tar');
      execFileSync('skopeo', ['copy', '--src-tls-verify=false', `docker://${registry.host}/tiny:1.0`, `docker-archive:${tar}:tiny:1.0`], { stdio: 'pipe' });
      return `docker-archive:${tar}`;
    }],
    ['a local .sif', () => path.resolve('test/fixtures/sif/busybox-gzip.sif')],
    // Checkouts live anywhere (CI clones under /check): a file in a top-level directory of its own must build too.
    ['a local .sif in a top-level directory', () => {
      mkdirSync(TOP_DIR, { recursive: true });
      copyFileSync('test/fixtures/sif/busybox-gzip.sif', path.join(TOP_DIR, 'busybox.sif'));
      return path.join(TOP_DIR, 'busybox.sif');
    }],
  ];
  afterAll(() => rmSync(TOP_DIR, { recursive: true, force: true }));

  test.each(cases)('%s: built, labelled with the file\'s sha256 as its digest', (kind, make) => {
    const source = make();
    const file = source.replace(/^[a-z-]+:/, '');
    const output = path.join(work.dir, `from-${kind.replace(/\W+/g, '-')}.sif`);
    const run = runAction({ source, output });
    expect(run.stdout).not.toMatch(/^\s+at /m);
    expect(run.status).toBe(0);
    const sha = execFileSync('sha256sum', [file], { encoding: 'utf8' }).split(' ')[0];
    const labels = inspectLabels(output);
    expect(labels[LABELS.sourceDigest]).toBe(`sha256:${sha}`);
    expect(labels[LABELS.sourceUri]).toBe(source);
    expect(apptainerExec(output, 'echo ok')).toBe('ok\n');
  });
});

describe('provenance is the tool\'s alone', () => {
  const FORGED = {
    [LABELS.source]: 'https://evil.example/forged',
    [LABELS.revision]: 'deadbeef',
    [LABELS.definitionSha256]: 'sha256:basebase',
    [LABELS.runUrl]: 'https://evil.example/run',
    [LABELS.buildKey]: 'sha256:forged',
    'keep.me': 'yes',
  };
  const mine = (labels: Record<string, string>) => Object.fromEntries(Object.entries(labels).filter(([k]) => k.startsWith('org.opencontainers.image.') || k.startsWith('io.github.sjtu-hpc.build-image.')));

  test.each([
    ['a registry image', () => {
      registry.pushBusybox('forged', '1.0', {}, FORGED);
      return `docker://${registry.host}/forged:1.0`;
    }],
    ['a local SIF', () => {
      // Built with apptainer directly: build-image itself refuses these labels.
      const def = path.join(work.dir, 'forged-base.def');
      writeFileSync(def, [`Bootstrap: localimage`, `From: ${path.resolve('test/fixtures/sif/busybox-gzip.sif')}`, '', '%labels', ...Object.entries(FORGED).map(([k, v]) => `    ${k} ${v}`), ''].join('\n'));
      const sif = path.join(work.dir, 'forged-base.sif');
      execFileSync('apptainer', ['build', '--fakeroot', '-F', sif, def], { stdio: 'pipe' });
      expect(inspectLabels(sif)[LABELS.definitionSha256]).toBe('sha256:basebase');
      return sif;
    }],
  ])('a base (%s) with forged provenance labels: the result carries only the tool\'s, with and without the GitHub variables', (_kind, make) => {
    const source = make();
    const offActions = path.join(work.dir, `prov-off-${_kind.replace(/\W/g, '')}.sif`);
    const run = runBundledAction({ source, output: offActions, 'registry-insecure': 'true' }, { cwd: work.dir, env: { HOME: process.env.HOME ?? '/root' } });
    expect(run.status).toBe(0);
    const off = inspectLabels(offActions);
    // Off Actions the tool knows no repository, revision or run, and a source build has no definition: all gone.
    expect(Object.keys(mine(off)).sort()).toEqual([LABELS.created, LABELS.builder, LABELS.buildKey, LABELS.sourceUri, LABELS.sourceDigest].sort());
    expect(off[LABELS.buildKey]).toBe(run.outputs['build-key']);
    expect(off['keep.me']).toBe('yes');

    const onActions = path.join(work.dir, `prov-on-${_kind.replace(/\W/g, '')}.sif`);
    const again = runAction({ source, output: onActions, 'registry-insecure': 'true' });
    expect(again.status).toBe(0);
    const on = inspectLabels(onActions);
    expect(mine(on)).toMatchObject({
      [LABELS.source]: 'https://github.com/sjtu-hpc/images',
      [LABELS.revision]: ACTIONS_ENV.GITHUB_SHA,
      [LABELS.runUrl]: 'https://github.com/sjtu-hpc/images/actions/runs/4242',
    });
    expect(on[LABELS.definitionSha256]).toBeUndefined();
  });

  test('a definition that sets a provenance label fails lint, naming the file and line', () => {
    const def = path.join(work.dir, 'forges.def');
    writeFileSync(def, `Bootstrap: localimage\nFrom: ${path.resolve('test/fixtures/sif/busybox-gzip.sif')}\n\n%labels\n    ${LABELS.runUrl} https://evil.example/run\n`);
    const run = runAction({ definition: def, output: path.join(work.dir, 'forges.sif') });
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/^::error file=forges\.def,line=5::label `io\.github\.sjtu-hpc\.build-image\.run-url` is provenance that build-image writes itself/m);
    expect(existsSync(path.join(work.dir, 'forges.sif'))).toBe(false);
  });
});

describe('a registry that leaves out Docker-Content-Digest', () => {
  test('the digest is computed from the manifest and equals skopeo inspect\'s', async () => {
    // An HTTP front that drops the header from every answer, as some registries and caching proxies do.
    const [host, port] = registry.host.split(':');
    const front = http.createServer((req, res) => {
      const upstream = http.request({ host, port: Number(port), path: req.url, method: req.method, headers: req.headers }, (answer) => {
        const headers = { ...answer.headers };
        delete headers['docker-content-digest'];
        res.writeHead(answer.statusCode ?? 502, headers);
        answer.pipe(res);
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
    try {
      const frontPort = (front.address() as AddressInfo).port;
      const seen = await fetch(`http://127.0.0.1:${frontPort}/v2/tiny/manifests/1.0`, { method: 'HEAD', headers: { Accept: 'application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json' } });
      expect(seen.headers.get('docker-content-digest')).toBeNull();
      const ours = await resolveManifestDigest(parseImageRef(`127.0.0.1:${frontPort}/tiny:1.0`), { insecure: true });
      const skopeo = execFileSync('skopeo', ['inspect', '--tls-verify=false', '--format', '{{.Digest}}', `docker://${registry.host}/tiny:1.0`], { encoding: 'utf8' }).trim();
      expect(ours).toBe(skopeo);
      expect(ours).toBe(digest);
    } finally {
      await new Promise((r) => front.close(r));
    }
  });
});

describe('signals, kill -9 and timeouts', () => {
  /** A definition whose %post runs `sleep SECONDS`: a build that is busy for as long as a test needs. */
  function slowDefinition(name: string, seconds: number): string {
    const def = path.join(work.dir, `${name}.def`);
    writeFileSync(def, ['Bootstrap: localimage', `From: ${path.resolve('test/fixtures/sif/busybox-gzip.sif')}`, '', '%post', '    echo post-started', `    sleep ${seconds}`, ''].join('\n'));
    return def;
  }

  /** Processes whose command line contains `text` (the unique sleep of a test's %post). */
  function processesWith(text: string): string[] {
    return execFileSync('ps', ['-eo', 'pid,args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(text) && !l.includes('ps -eo'));
  }

  async function waitFor(check: () => boolean, ms = 60_000): Promise<void> {
    const until = Date.now() + ms;
    while (!check() && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    expect(check()).toBe(true);
  }

  function startCli(args: string[]): { child: ReturnType<typeof spawn>; output: () => string; exited: Promise<number | null> } {
    const child = spawn(process.execPath, [path.resolve('dist/cli.js'), 'build', ...args], { cwd: work.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.on('data', (d) => (out += d));
    child.stderr!.on('data', (d) => (out += d));
    return { child, output: () => out, exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))) };
  }

  test.each([
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)('%s during the post section stops the build: exit %d, no partial, no builder process left', async (signal, status) => {
    const seconds = signal === 'SIGTERM' ? 4241 : 4243;
    const output = path.join(work.dir, `signal-${signal}.sif`);
    const run = startCli(['--definition', slowDefinition(`signal-${signal}`, seconds), '--output', output]);
    await waitFor(() => run.output().includes('post-started'));
    run.child.kill(signal);
    expect(await run.exited).toBe(status);
    expect(run.output()).toMatch(/^error: build cancelled/m);
    expect(run.output()).not.toMatch(/^\s+at /m);
    await waitFor(() => processesWith(`sleep ${seconds}`).length === 0, 15_000);
    expect(readdirSync(work.dir).filter((f) => f.includes(`signal-${signal}.sif`))).toEqual([]);
  }, 120_000);

  test('kill -9 of the tool leaves no builder running, and the next build removes the dead run\'s partial and temp dir', async () => {
    const output = path.join(work.dir, 'killed.sif');
    const run = startCli(['--definition', slowDefinition('killed', 4244), '--output', output]);
    await waitFor(() => run.output().includes('post-started'));
    const pid = run.child.pid!;
    run.child.kill('SIGKILL');
    await run.exited;
    // The builder got SIGTERM from its parent's death and stopped its %post.
    await waitFor(() => processesWith('sleep 4244').length === 0, 30_000);
    // What the dead run left: a partial image and a temp dir named with its PID (as apptainer may leave them).
    writeFileSync(path.join(work.dir, `.killed.sif.partial-${pid}`), 'half an image');
    mkdirSync(path.join(os.tmpdir(), `build-image-${pid}-left`), { recursive: true });
    const next = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'build', '--definition', slowDefinition('killed', 0), '--output', output], { cwd: work.dir, encoding: 'utf8' });
    expect(next.status).toBe(0);
    expect(next.stderr).toContain(`removed ${path.join(work.dir, `.killed.sif.partial-${pid}`)}, left by a build that died (process ${pid})`);
    expect(existsSync(path.join(os.tmpdir(), `build-image-${pid}-left`))).toBe(false);
    expect(readdirSync(work.dir).filter((f) => f.startsWith('.killed.sif.partial'))).toEqual([]);
  }, 180_000);

  test("the action's post step after a killed build step removes its partial image and temp dir", async () => {
    const runner = tempDir('bi-build-post-');
    try {
      const stateFile = path.join(runner.dir, 'state');
      writeFileSync(stateFile, '');
      const output = path.join(work.dir, 'post-killed.sif');
      const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, GITHUB_STATE: stateFile, GITHUB_OUTPUT: path.join(runner.dir, 'out'), INPUT_DEFINITION: slowDefinition('post-killed', 4246), INPUT_OUTPUT: output };
      const main = spawn(process.execPath, [path.resolve('dist/index.js')], { env, cwd: work.dir, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      main.stdout!.on('data', (d) => (out += d));
      const exited = new Promise((r) => main.once('exit', r));
      await waitFor(() => out.includes('post-started'));
      main.kill('SIGKILL');
      await exited;
      const state = parseOutputs(readFileSync(stateFile, 'utf8'));
      const held = JSON.parse(state.resources) as { kind: string; path: string }[];
      const partial = held.find((r) => r.path.includes('.post-killed.sif.partial-'))!.path;
      const temp = held.find((r) => r.path.includes('/build-image-'))!.path;
      // Stand in for what the builder may leave: the partial image it was writing.
      writeFileSync(partial, 'half an image');
      expect(existsSync(temp)).toBe(true);
      const post = spawnSync(process.execPath, [path.resolve('dist/post.js')], { env: { ...env, STATE_resources: state.resources }, encoding: 'utf8', timeout: 60_000 });
      expect(post.status).toBe(0);
      expect(existsSync(partial)).toBe(false);
      expect(existsSync(temp)).toBe(false);
      await waitFor(() => processesWith('sleep 4246').length === 0, 30_000);
    } finally {
      runner.cleanup();
    }
  }, 120_000);

  test('build-timeout ends a build that takes too long, with a message naming it and nothing at output', async () => {
    const output = path.join(work.dir, 'slow.sif');
    const run = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'build', '--definition', slowDefinition('slow', 4245), '--output', output, '--build-timeout', '5s'], { cwd: work.dir, encoding: 'utf8', timeout: 120_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^error: build timed out after 5\.0 s \(build-timeout\) building \S+slow\.def \(from localimage:\S+\); the builder and its children were stopped/m);
    await waitFor(() => processesWith('sleep 4245').length === 0, 15_000);
    expect(existsSync(output)).toBe(false);
  }, 120_000);

  test('SIGTERM while the source digest is being resolved (a registry that never answers) ends the run at once', async () => {
    const silent = net.createServer(() => undefined);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const run = startCli(['--source', `docker://127.0.0.1:${port}/never/answers:1`, '--registry-insecure', '--output', path.join(work.dir, 'never.sif')]);
      await waitFor(() => run.output().includes('Resolve source'));
      const sent = Date.now();
      run.child.kill('SIGTERM');
      expect(await run.exited).toBe(143);
      expect(Date.now() - sent).toBeLessThan(10_000);
      expect(run.output()).toMatch(/^error: build cancelled while resolving the source/m);
    } finally {
      silent.close();
    }
  }, 60_000);
});

describe('a registry that stalls or cuts mid-blob', () => {
  /** A front that passes everything but blobs, and after 100 KB of a blob stalls (socket kept open) or cuts. */
  async function front(mode: 'stall' | 'cut'): Promise<{ port: number; close: () => void }> {
    const [host, port] = registry.host.split(':');
    const server = http.createServer((req, res) => {
      const upstream = http.request({ host, port: Number(port), path: req.url, method: req.method, headers: req.headers }, (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        if (!/\/blobs\//.test(req.url ?? '') || req.method !== 'GET') return void answer.pipe(res);
        let sent = 0;
        answer.on('data', (chunk: Buffer) => {
          if (sent >= 100_000) return;
          res.write(chunk.subarray(0, Math.max(0, 100_000 - sent)));
          sent += chunk.length;
          if (sent >= 100_000 && mode === 'cut') res.socket?.destroy();
        });
      });
      req.pipe(upstream);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      port: (server.address() as AddressInfo).port,
      close: () => {
        server.closeAllConnections();
        server.close();
      },
    };
  }

  /** Builds through the front with an empty cache, so the layers are really downloaded through it. */
  async function buildThrough(frontPort: number, name: string, extra: string[] = []): Promise<{ status: number | null; err: string; output: string }> {
    const cache = path.join(work.dir, `${name}-cache`);
    mkdirSync(cache, { recursive: true });
    const output = path.join(work.dir, `${name}.sif`);
    return new Promise((resolve) => {
      const child = spawn(process.execPath, [path.resolve('dist/cli.js'), 'build', '--source', `docker://127.0.0.1:${frontPort}/stalls:1.0`, '--registry-insecure', '--output', output, ...extra], {
        cwd: work.dir,
        env: { ...process.env, APPTAINER_CACHEDIR: cache },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      child.stderr!.on('data', (d) => (err += d));
      child.once('exit', (status) => resolve({ status, err, output }));
    });
  }

  beforeAll(() => {
    registry.pushBusybox('stalls', '1.0', { MARK: 'stall' });
  });

  test('a stall: the build ends after pull-stall-timeout, naming the source and registry; no output, no partial, no builder left', async () => {
    const f = await front('stall');
    try {
      const started = Date.now();
      const run = await buildThrough(f.port, 'stalled', ['--pull-stall-timeout', '6s']);
      expect(run.status).toBe(1);
      expect(run.err).toMatch(new RegExp(`^error: the pull of docker://127\\.0\\.0\\.1:${f.port}/stalls:1\\.0 from registry 127\\.0\\.0\\.1:${f.port} stalled: no data for 6\\.0 s \\(pull-stall-timeout\\)`, 'm'));
      expect(Date.now() - started).toBeLessThan(90_000);
      expect(existsSync(run.output)).toBe(false);
      expect(readdirSync(work.dir).filter((f) => f.startsWith('.stalled.sif'))).toEqual([]);
      const left = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes('stalled.sif.partial'));
      expect(left).toEqual([]);
    } finally {
      f.close();
    }
  }, 120_000);

  test('a cut: the failure names the source and the registry, not only the builder\'s words', async () => {
    const f = await front('cut');
    try {
      const run = await buildThrough(f.port, 'cut');
      expect(run.status).toBe(1);
      expect(run.err).toMatch(new RegExp(`^error: pulling docker://127\\.0\\.0\\.1:${f.port}/stalls:1\\.0 from registry 127\\.0\\.0\\.1:${f.port} failed \\(exit \\d+\\):`, 'm'));
      expect(run.err).not.toMatch(/^\s+at /m);
      expect(existsSync(run.output)).toBe(false);
    } finally {
      f.close();
    }
  }, 120_000);
});

describe('full file systems', () => {
  /** A small tmpfs (root may mount here), filled to the last byte when `fill` is set. */
  function smallFs(name: string, size: string, fill: boolean): { dir: string; cleanup: () => void } {
    const dir = path.join(work.dir, name);
    mkdirSync(dir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
    if (fill) spawnSync('dd', ['if=/dev/zero', `of=${dir}/fill`, 'bs=4k'], { stdio: 'ignore' });
    return { dir, cleanup: () => spawnSync('umount', ['-l', dir]) };
  }

  function build(def: string, output: string, env: Record<string, string> = {}): { status: number | null; err: string } {
    const run = spawnSync(process.execPath, [path.resolve('dist/cli.js'), 'build', '--definition', def, '--output', output], {
      cwd: work.dir,
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    return { status: run.status, err: run.stderr };
  }

  const def = () => {
    const file = path.join(work.dir, 'space.def');
    writeFileSync(file, `Bootstrap: localimage\nFrom: ${path.resolve('test/fixtures/sif/busybox-gzip.sif')}\n`);
    return file;
  };

  test('a full TMPDIR is one message naming the path, TMPDIR and the free space; no stack trace, no output', () => {
    const fs = smallFs('full-tmp', '256k', true);
    try {
      const output = path.join(work.dir, 'space-tmp.sif');
      const run = build(def(), output, { TMPDIR: fs.dir });
      expect(run.status).toBe(1);
      expect(run.err).toMatch(new RegExp(`^error: no space left on the file system of ${fs.dir}\\S* \\(TMPDIR: ${fs.dir}, 0 B free\\); free space there, or set TMPDIR to a larger file system$`, 'm'));
      expect(run.err).not.toMatch(/^\s+at /m);
      expect(existsSync(output)).toBe(false);
    } finally {
      fs.cleanup();
    }
  });

  test('a full output file system is one message naming the path, output and the free space', () => {
    const fs = smallFs('full-out', '512k', false);
    try {
      const output = path.join(fs.dir, 'space-out.sif');
      const run = build(def(), output);
      expect(run.status).toBe(1);
      expect(run.err).toMatch(new RegExp(`^error: no space left on the file system of ${fs.dir}/\\.space-out\\.sif\\.partial-\\d+ \\(output: ${fs.dir}, [^)]+\\) free\\); free space there, or set output to a larger file system$`, 'm'));
      expect(run.err).not.toMatch(/^\s+at /m);
      expect(readdirSync(fs.dir)).toEqual([]);
    } finally {
      fs.cleanup();
    }
  });
});

describe('build arguments', () => {
  test('values with , " \' $ ` and \\ reach %post unchanged (passed as apptainer reads them, not as CSV)', () => {
    const def = path.join(work.dir, 'args.def');
    writeFileSync(
      def,
      [
        'Bootstrap: localimage',
        `From: ${path.resolve('test/fixtures/sif/busybox-gzip.sif')}`,
        '',
        '%post',
        "    cat > /values <<'VALUES'",
        'A=[{{ A }}]',
        'B=[{{ B }}]',
        'C=[{{ C }}]',
        'D=[{{ D }}]',
        'E=[{{ E }}]',
        'VALUES',
        '',
      ].join('\n'),
    );
    const values = ['red,green,blue', 'say "hi", then go', "it's", '$HOME and `id`', 'back\\slash'];
    const output = path.join(work.dir, 'args.sif');
    const run = runAction({ definition: def, output, 'build-args': values.map((v, i) => `${'ABCDE'[i]}=${v}`).join('\n') });
    expect(run.stdout).not.toMatch(/^\s+at /m);
    expect(run.status).toBe(0);
    expect(apptainerExec(output, 'cat /values')).toBe(values.map((v, i) => `${'ABCDE'[i]}=[${v}]\n`).join(''));
  });
});

const DEFINITION = (host: string) => `Bootstrap: docker
From: ${host}/tiny:1.0

%arguments
    WHO=nobody

%post
    echo "built for {{ WHO }}" > /etc/motd

%environment
    export CLUSTER_NAME=pi2

%labels
    maintainer hpc@sjtu.edu.cn

%runscript
    cat /etc/motd
`;

describe('building from a definition file through the action entry point (sources)', () => {
  let image: string;
  let outputs: Record<string, string>;

  beforeAll(async () => {
    const defFile = path.join(work.dir, 'pi.def');
    writeFileSync(defFile, DEFINITION(registry.host));
    image = path.join(work.dir, 'out', 'pi.sif');
    mkdirSync(path.dirname(image), { recursive: true });
    const outputFile = path.join(work.dir, 'src-output');
    writeFileSync(outputFile, '');
    const saved = { ...process.env };
    Object.assign(process.env, ACTIONS_ENV, {
      GITHUB_OUTPUT: outputFile,
      'INPUT_DEFINITION': defFile,
      'INPUT_OUTPUT': image,
      'INPUT_BUILD-ARGS': 'WHO=the π cluster',
      'INPUT_REGISTRY-INSECURE': 'true',
    });
    const { run } = await import('../../src/main.js');
    try {
      await run();
      expect(process.exitCode ?? 0).toBe(0);
    } finally {
      process.env = saved;
      process.exitCode = 0;
    }
    outputs = parseOutputs(readFileSync(outputFile, 'utf8'));
  });

  test('%post ran with the build argument, %environment and %runscript are in the image', () => {
    expect(outputs.image).toBe(image);
    expect(apptainerExec(image, 'echo $CLUSTER_NAME; cat /etc/motd')).toBe('pi2\nbuilt for the π cluster\n');
    const runscript = execFileSync('apptainer', ['run', ...execFlags(), image], { encoding: 'utf8' });
    expect(runscript).toBe('built for the π cluster\n');
  });

  test('user labels and provenance labels agree between apptainer inspect and the SIF reader', async () => {
    const fromApptainer = inspectLabels(image);
    const info = await readSifFile(image);
    expect(info.labels).toEqual(fromApptainer);
    const defSha = execFileSync('sha256sum', [path.join(work.dir, 'pi.def')], { encoding: 'utf8' }).split(' ')[0];
    expect(fromApptainer).toMatchObject({
      maintainer: 'hpc@sjtu.edu.cn',
      [LABELS.definitionSha256]: `sha256:${defSha}`,
      [LABELS.sourceDigest]: digest,
      [LABELS.buildKey]: outputs['build-key'],
    });
  });

  test('the definition stored in the image is the user file, pinned to the digest it was built from', async () => {
    const info = await readSifFile(image);
    expect(info.definition).toContain(`From: ${registry.host}/tiny@${digest}`);
    // apptainer stores the definition with build arguments substituted.
    expect(info.definition).toContain('echo "built for the π cluster" > /etc/motd');
  });
});

describe('builder: singularity', () => {
  test('builds with the `singularity` command when asked to', () => {
    const output = path.join(work.dir, 'sing.sif');
    const run = runAction({ builder: 'singularity', source: `docker://${registry.host}/tiny:1.0`, 'registry-insecure': 'true', output });
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('::group::Build with singularity');
    expect(run.stdout).toMatch(/\$ singularity build /);
    expect(apptainerExec(output, 'echo $GREETING').trim()).toBe('from-the-registry');
  });
});

describe('the CLI', () => {
  test('builds the same definition and prints the summary as text', () => {
    const defFile = path.join(work.dir, 'cli.def');
    writeFileSync(defFile, DEFINITION(registry.host));
    const result = spawnSync('node', [path.resolve('dist/cli.js'), 'build', '--definition', 'cli.def', '--name', 'cli', '--registry-insecure', '--build-arg', 'WHO=cli'], {
      cwd: work.dir,
      encoding: 'utf8',
    });
    expect(result.stderr).not.toMatch(/^\s+at /m);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^build-image: build\n=+\n/m);
    expect(result.stdout).toMatch(/^Image +.*cli\.sif$/m);
    expect(result.stdout).toMatch(/^SHA-256 +[0-9a-f]{64}$/m);
    expect(apptainerExec(path.join(work.dir, 'cli.sif'), 'cat /etc/motd')).toBe('built for cli\n');
  });

  test('the example definition, whose From is a build argument, builds pinned to the digest', () => {
    const demoDigest = registry.pushBusybox('demo/busybox', '1.0');
    const result = spawnSync(
      'node',
      [path.resolve('dist/cli.js'), 'build', '--definition', path.resolve('examples/pi.def'), '--output', 'example.sif', '--registry-insecure', '--build-arg', `REGISTRY=${registry.host}`],
      { cwd: work.dir, encoding: 'utf8' },
    );
    expect(result.stderr).not.toMatch(/error:/);
    expect(result.status).toBe(0);
    const labels = inspectLabels(path.join(work.dir, 'example.sif'));
    expect(labels[LABELS.sourceDigest]).toBe(demoDigest);
    expect(labels[LABELS.sourceUri]).toBe(`docker://${registry.host}/demo/busybox:1.0`);
    const run = execFileSync('apptainer', ['run', ...execFlags(), path.join(work.dir, 'example.sif')], { encoding: 'utf8' });
    expect(run).toBe('hello from pi2\n');
  });

  test('lint prints file:line findings and exits 1 on errors, 0 on a clean file', () => {
    const typo = spawnSync('node', [path.resolve('dist/cli.js'), 'lint', 'test/fixtures/definitions/u2cb-enviroment.def'], { encoding: 'utf8' });
    expect(typo.status).toBe(1);
    expect(typo.stdout).toContain('test/fixtures/definitions/u2cb-enviroment.def:7:1: error: unknown section %enviroment; did you mean %environment?');
    const clean = spawnSync('node', [path.resolve('dist/cli.js'), 'lint', 'examples/pi.def'], { encoding: 'utf8' });
    expect(clean.status).toBe(0);
    expect(clean.stdout).toBe('examples/pi.def: 0 error(s), 0 warning(s)\n');
  });

  test('inspect prints what the reader sees as JSON', () => {
    const result = spawnSync('node', [path.resolve('dist/cli.js'), 'inspect', path.join(work.dir, 'cli.sif')], { encoding: 'utf8' });
    expect(result.status).toBe(0);
    const info = JSON.parse(result.stdout);
    expect(info.labels).toEqual(inspectLabels(path.join(work.dir, 'cli.sif')));
    expect(info.primary).toMatchObject({ fsType: 'Squashfs', arch: 'amd64', compression: 'gzip' });
  });
});

describe('the centre’s %enviroment typo', () => {
  test('fails lint before apptainer runs, naming line 7 and suggesting %environment', () => {
    // A PATH whose apptainer only records that it was called: it must never be.
    const bin = path.join(work.dir, 'spy-bin');
    const marker = path.join(work.dir, 'apptainer-was-called');
    mkdirSync(bin, { recursive: true });
    const real = execFileSync('sh', ['-c', 'command -v apptainer'], { encoding: 'utf8' }).trim();
    writeFileSync(path.join(bin, 'apptainer'), `#!/bin/sh\ntouch ${marker}\nexec ${real} "$@"\n`);
    chmodSync(path.join(bin, 'apptainer'), 0o755);
    const fixture = path.resolve('test/fixtures/definitions/u2cb-enviroment.def');
    const run = runAction({ definition: fixture, output: path.join(work.dir, 'typo.sif') }, { path: `${bin}:${process.env.PATH}` });
    expect(run.status).toBe(1);
    const annotations = run.stdout.replace(/%25/g, '%');
    expect(annotations).toMatch(/::error file=[^,]*u2cb-enviroment\.def,line=7[^:]*::unknown section %enviroment; did you mean %environment\?/);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(path.join(work.dir, 'typo.sif'))).toBe(false);
  });
});

describe('sudo: a step that is not root', () => {
  // As on a hosted runner: the step runs as an unprivileged user; `bi-sudo` has passwordless sudo, `bi-nosudo` not
  // (both made by scripts/provision.sh). The bundle is copied where those users can read it.
  let place: { dir: string; cleanup: () => void };
  let cli: string;

  beforeAll(() => {
    requireTools('sudo', 'runuser');
    for (const user of ['bi-sudo', 'bi-nosudo']) {
      if (spawnSync('id', ['-u', user]).status !== 0) throw new Error(`user ${user} is missing: run scripts/provision.sh`);
    }
    place = tempDir('bi-sudo-');
    chmodSync(place.dir, 0o755);
    execFileSync('cp', ['-r', path.resolve('dist'), path.join(place.dir, 'dist')]);
    cli = path.join(place.dir, 'dist', 'cli.js');
  });

  afterAll(() => place?.cleanup());

  /** A directory owned by `user`, holding a definition that only real root can build (a device node). */
  function userDir(user: string): string {
    const dir = path.join(place.dir, user);
    mkdirSync(path.join(dir, 'home'), { recursive: true });
    mkdirSync(path.join(dir, 'tmp'), { recursive: true });
    writeFileSync(path.join(dir, 'root.def'), `Bootstrap: docker\nFrom: ${registry.host}/tiny:1.0\n\n%post\n    mknod /dev-made-by-root c 1 3 || touch /dev-made-by-root\n`);
    execFileSync('chown', ['-R', `${user}:${user}`, dir]);
    return dir;
  }

  function runAs(user: string, dir: string, extra: string[] = [], env: Record<string, string> = {}) {
    const vars = [`HOME=${dir}/home`, `TMPDIR=${dir}/tmp`, 'PATH=/usr/local/bin:/usr/bin:/bin', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)];
    const args = ['build', '--definition', 'root.def', '--output', 'root.sif', '--registry-insecure', ...extra];
    return spawnSync('runuser', ['-u', user, '--', 'env', '-i', ...vars, process.execPath, cli, ...args], { cwd: dir, encoding: 'utf8', timeout: 180_000 });
  }

  test('sudo: auto with passwordless sudo builds as root (a device node) and hands the SIF and the layer cache back', () => {
    const dir = userDir('bi-sudo');
    const password = 'sudo-s3cr3t-pw';
    const run = runAs('bi-sudo', dir, ['--registry-username', 'ci'], { BUILD_IMAGE_REGISTRY_PASSWORD: password });
    expect([run.status, run.stderr.match(/^error: .*/m)?.[0]]).toEqual([0, undefined]);
    const log = run.stdout + run.stderr;
    expect(log).toMatch(/sudo: yes \(not root, passwordless sudo works\)/);
    expect(log).toMatch(/fakeroot: no \(root with full capabilities\)|fakeroot: yes \(root lacks capabilities/);
    const image = path.join(dir, 'root.sif');
    const uid = Number(execFileSync('id', ['-u', 'bi-sudo'], { encoding: 'utf8' }));
    expect(statSync(image).uid).toBe(uid);
    if (/fakeroot: no/.test(log)) expect(apptainerExec(image, 'stat -c %F /dev-made-by-root')).toMatch(/character special file/);
    // The layer cache (placed on the file system with the most room: here the user's TMPDIR) is the user's.
    const cache = path.join(dir, 'tmp', 'build-image-cache', 'apptainer', 'cache');
    expect(existsSync(cache)).toBe(true);
    expect(execFileSync('find', [cache, '!', '-uid', String(uid)], { encoding: 'utf8' })).toBe('');
    expect(leftovers(dir)).toEqual(['root.sif']);
    expect(log).not.toContain(password);
  });

  test('sudo: auto without passwordless sudo, as a user who cannot start the builder, says so and why sudo was not used', () => {
    const dir = userDir('bi-nosudo');
    const run = runAs('bi-nosudo', dir);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^error: builder: .*cannot start .*it cannot run as this user.* \(sudo not used: not root, and `sudo -n true` failed \(sudo: a password is required\)\)$/m);
    expect(existsSync(path.join(dir, 'root.sif'))).toBe(false);
  });

  test('through sudo, build-timeout and kill -9 of the tool each end root\'s builder and its children', async () => {
    const dir = userDir('bi-sudo');
    copyFileSync(path.resolve('test/fixtures/sif/busybox-gzip.sif'), path.join(dir, 'base.sif'));
    const slow = (seconds: number) => {
      writeFileSync(path.join(dir, `slow-${seconds}.def`), ['Bootstrap: localimage', `From: ${dir}/base.sif`, '', '%post', '    echo post-started', `    sleep ${seconds}`, ''].join('\n'));
      return ['--definition', `slow-${seconds}.def`, '--output', `slow-${seconds}.sif`];
    };
    const sleeping = (seconds: number) => execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' }).split('\n').filter((l) => l.startsWith(`sleep ${seconds}`));
    const gone = async (seconds: number) => {
      const until = Date.now() + 20_000;
      while (sleeping(seconds).length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      return sleeping(seconds);
    };

    const timed = runAs('bi-sudo', dir, [...slow(4251).slice(0, 2), '--output', 'slow.sif', '--build-timeout', '5s']);
    expect(timed.stderr).toMatch(/^error: build timed out after 5\.0 s \(build-timeout\)/m);
    expect(await gone(4251)).toEqual([]);

    const child = spawn('runuser', ['-u', 'bi-sudo', '--', 'env', '-i', `HOME=${dir}/home`, `TMPDIR=${dir}/tmp`, 'PATH=/usr/local/bin:/usr/bin:/bin', process.execPath, cli, 'build', ...slow(4252)], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (d) => (output += d));
    child.stderr!.on('data', (d) => (output += d));
    const until = Date.now() + 60_000;
    const exited = new Promise((r) => child.once('exit', r));
    try {
      // The line the %post prints, not the shell's trace of the echo.
      while (!/^\s*post-started$/m.test(output) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
      expect(sleeping(4252)).toHaveLength(1);
      // The tool itself (runuser's child), not runuser: nothing is left to forward a signal.
      const tool = execFileSync('pgrep', ['-u', 'bi-sudo', '-f', `${cli} build`], { encoding: 'utf8' }).trim().split('\n');
      for (const pid of tool) process.kill(Number(pid), 'SIGKILL');
      expect(await gone(4252)).toEqual([]);
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  }, 150_000);

  test('sudo: true without passwordless sudo fails at once, naming the input', () => {
    const dir = userDir('bi-nosudo');
    const run = runAs('bi-nosudo', dir, ['--sudo', 'true']);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/^error: sudo: true, but `sudo -n true` failed \(sudo: a password is required\); allow this user passwordless sudo/m);
    expect(run.stderr).not.toMatch(/^\s+at /m);
  });
});

describe('bad input: exit 1, one message naming the input, no stack trace, no output file', () => {
  let outDir: string;
  beforeAll(() => {
    outDir = path.join(work.dir, 'bad');
    mkdirSync(outDir, { recursive: true });
    writeFileSync(path.join(outDir, 'ok.def'), `Bootstrap: docker\nFrom: ${registry.host}/tiny:1.0\n`);
    writeFileSync(path.join(outDir, 'fails.def'), `Bootstrap: docker\nFrom: ${registry.host}/tiny:1.0\n\n%post\n    echo about to fail\n    exit 3\n`);
  });

  const cases: [string, () => Record<string, string>, RegExp][] = [
    ['a source and a definition together', () => ({ source: `docker://${registry.host}/tiny:1.0`, definition: 'ok.def' }), /input source: give either `source` or `definition`, not both/],
    ['neither', () => ({}), /input source: nothing to build/],
    ['an unknown builder', () => ({ definition: 'ok.def', builder: 'docker' }), /input builder: must be one of auto, apptainer, singularity, enroot, u2cb; got 'docker'/],
    ['a missing definition file', () => ({ definition: 'missing.def' }), /input definition: file not found: missing.def/],
    ['an output whose directory does not exist', () => ({ definition: 'ok.def', output: 'no/such/dir/x.sif' }), /input output: directory does not exist: .*no\/such\/dir/],
    ['a malformed build arg', () => ({ definition: 'ok.def', 'build-args': 'GOOD=1\nBAD' }), /input build-args: line 2: expected KEY=VALUE/],
    ['an unreachable registry', () => ({ source: `docker://127.0.0.1:${closedPort}/tiny:1.0`, 'registry-insecure': 'true' }), /source: cannot reach registry 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/],
    ['an image the registry does not have', () => ({ source: `docker://${registry.host}/absent:1.0`, 'registry-insecure': 'true' }), /source: image not found: 127\.0\.0\.1:\d+\/absent:1\.0/],
    ['a %post that fails', () => ({ definition: 'fails.def', 'registry-insecure': 'true' }), /^::error::%post failed at `exit 3` \(\S+\/fails\.def:6\), exit status 3:[\s\S]*about to fail/],
  ];

  test.each(cases)('%s', (_name, inputs, message) => {
    const output = path.join(outDir, 'image.sif');
    const run = runAction({ output, ...inputs() }, { cwd: outDir });
    expect(run.status).toBe(1);
    const errors = run.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toHaveLength(1);
    expect(errors[0].replace(/%0A/g, '\n').replace(/%0D/g, '\r').replace(/%25/g, '%')).toMatch(message);
    expect(run.stdout).not.toMatch(/^\s+at .*\.js:\d+/m);
    expect(leftovers(outDir)).toEqual([]);
    expect(run.outputs.image).toBeUndefined();
  });

  test('a builder that cannot start says why and what to do, in one message without a stack trace', () => {
    const bin = path.join(work.dir, 'broken-bin');
    mkdirSync(bin, { recursive: true });
    writeFileSync(path.join(bin, 'apptainer'), '#!/bin/sh\necho "FATAL:   permission denied: apptainer needs a setuid installation or user namespaces" >&2\nexit 255\n', { mode: 0o755 });
    const run = runAction({ output: path.join(outDir, 'image.sif'), definition: 'ok.def', 'registry-insecure': 'true' }, { cwd: outDir, path: `${bin}:/usr/bin:/bin` });
    expect(run.status).toBe(1);
    const errors = run.stdout.split('\n').filter((l) => l.startsWith('::error'));
    expect(errors).toEqual([expect.stringMatching(new RegExp(`^::error::builder: ${bin}/apptainer cannot start \\(\`apptainer --version\` exited 255: FATAL: +permission denied.*\\); it cannot run as this user: run the step as root, allow unprivileged user namespaces`))]);
    expect(run.stdout).not.toMatch(/^\s+at /m);
  });

  test('the registry password never reaches the log, the outputs or the summary', () => {
    const password = 'hunter2-s3cr3t-t0ken';
    const run = runAction({ source: `docker://${registry.host}/tiny:1.0`, 'registry-insecure': 'true', 'registry-username': 'ci', 'registry-password': password, output: path.join(outDir, 'masked.sif') }, { cwd: outDir });
    expect(run.status).toBe(0);
    // The only place it may appear is the runner's own mask command, which the runner consumes.
    const visible = run.stdout.split('\n').filter((l) => !l.startsWith('::add-mask::'));
    expect(visible.join('\n')).not.toContain(password);
    expect(run.stdout).toContain(`::add-mask::${password}`);
    expect(JSON.stringify(run.outputs)).not.toContain(password);
    expect(run.summary).not.toContain(password);
    expect(inspectLabels(path.join(outDir, 'masked.sif'))).not.toEqual(expect.objectContaining({ password }));
    expect(readFileSync(path.join(outDir, 'masked.sif')).includes(password)).toBe(false);
  });
});
