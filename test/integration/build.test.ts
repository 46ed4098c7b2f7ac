// The build stage end to end: real apptainer, a real registry on loopback, the action's entry point (sources
// and bundle) and the CLI, with what a user sees checked: files, labels, outputs, summaries, errors.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { readSifFile } from '../../src/image/sif.js';
import { LABELS } from '../../src/build/provenance.js';
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
    ['an unknown builder', () => ({ definition: 'ok.def', builder: 'docker' }), /input builder: must be one of auto, apptainer, singularity; got 'docker'/],
    ['a missing definition file', () => ({ definition: 'missing.def' }), /input definition: file not found: missing.def/],
    ['an output whose directory does not exist', () => ({ definition: 'ok.def', output: 'no/such/dir/x.sif' }), /input output: directory does not exist: .*no\/such\/dir/],
    ['a malformed build arg', () => ({ definition: 'ok.def', 'build-args': 'GOOD=1\nBAD' }), /input build-args: line 2: expected KEY=VALUE/],
    ['an unreachable registry', () => ({ source: `docker://127.0.0.1:${closedPort}/tiny:1.0`, 'registry-insecure': 'true' }), /source: cannot reach registry 127\.0\.0\.1:\d+ \(ECONNREFUSED\)/],
    ['an image the registry does not have', () => ({ source: `docker://${registry.host}/absent:1.0`, 'registry-insecure': 'true' }), /source: image not found: 127\.0\.0\.1:\d+\/absent:1\.0/],
    ['a %post that fails', () => ({ definition: 'fails.def', 'registry-insecure': 'true' }), /apptainer build failed \(exit \d+\):[\s\S]*about to fail/],
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
