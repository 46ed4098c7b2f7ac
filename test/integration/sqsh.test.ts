// `formats: sif,sqsh` on the real programs: a definition built by the real apptainer from the loopback registry,
// its SIF turned into an enroot image, and that image run by the real enroot (create + start, and a write with
// --root --rw) and by pyxis under the test Slurm with the node's GPUs.
import { afterAll, beforeAll, describe, expect, jest, test } from '@jest/globals';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, readdirSync, readFileSync, readlinkSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { loadConfig } from '../../src/config/config.js';
import { describeError } from '../../src/errors.js';
import { convertSifToSqsh, SqshConversionError } from '../../src/image/sqsh.js';
import { runPipeline } from '../../src/pipeline.js';
import { sha256File } from '../../src/util/hash.js';
import { CaptureReporter } from '../helpers/capture-reporter.js';
import { startRegistry, type Registry } from '../helpers/registry.js';
import { startSlurm, type Slurm } from '../helpers/slurm.js';
import { startSshd, type Sshd } from '../helpers/sshd.js';
import { startGitHubServer, type GitHubServer } from '../helpers/github-server.js';
import { requireTools, tempDir } from '../helpers/tools.js';

jest.setTimeout(240_000);

let registry: Registry;
let slurm: Slurm;
const work = tempDir('bi-sqsh-');

beforeAll(async () => {
  requireTools('apptainer', 'enroot', 'unsquashfs', 'mksquashfs');
  registry = await startRegistry();
  registry.pushBusybox('tiny', '1.0', { FROM_THE_REGISTRY: 'yes' });
  slurm = await startSlurm({ pyxis: true });
}, 180_000);

afterAll(async () => {
  await slurm?.stop();
  await registry?.stop();
  work.cleanup();
});

const DEFINITION = (host: string): string => `Bootstrap: docker
From: ${host}/tiny:1.0

%environment
    export GREETING="hello from %environment"
    export QUOTED='a "quoted" value'
    export PATH=/opt/tools/bin:$PATH

%runscript
    echo "runscript: GREETING=$GREETING QUOTED=$QUOTED FROM_THE_REGISTRY=$FROM_THE_REGISTRY PATH=$PATH args=$*"
`;

async function build(given: Record<string, string>, cwd = work.dir): Promise<{ reporter: CaptureReporter; message?: string }> {
  const reporter = new CaptureReporter();
  try {
    await runPipeline(loadConfig((name) => given[name], { cwd, env: {} }), reporter);
    return { reporter };
  } catch (error) {
    return { reporter, message: describeError(error, (name) => `input ${name}`) };
  }
}

/** A payload report line whose figure says which runtime ran it: `apptainer` under apptainer, `enroot` under enroot (pyxis). */
const runtimeFigure = (apptainer: number, enroot: number): string =>
  `if [ -n "$APPTAINER_CONTAINER" ]; then v=${apptainer}; else v=${enroot}; fi; echo "{\\"smoke\\":\\"build-image/pytorch-smoke\\",\\"ok\\":true,\\"metrics\\":{\\"cpu_gemm_fp32_gflops\\":$v}}"`;

function enroot(args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync('enroot', args, { env: slurm.env, encoding: 'utf8', timeout: 60_000 });
}

describe('formats: sif,sqsh', () => {
  let sqsh: string;
  let outputs: Record<string, string>;

  beforeAll(async () => {
    writeFileSync(path.join(work.dir, 'demo.def'), DEFINITION(registry.host));
    const { reporter, message } = await build({ name: 'demo', definition: 'demo.def', 'registry-insecure': 'true', formats: 'sif,sqsh', cache: 'false' });
    expect(message).toBeUndefined();
    outputs = reporter.outputs;
    sqsh = outputs.sqsh;
  }, 180_000);

  test('the build writes NAME.sqsh beside the SIF and sets sqsh, sqsh-sha256 and sqsh-size', async () => {
    expect(sqsh).toBe(path.join(work.dir, 'demo.sqsh'));
    expect(outputs.image).toBe(path.join(work.dir, 'demo.sif'));
    expect(outputs['sqsh-sha256']).toBe(await sha256File(sqsh));
    expect(Number(outputs['sqsh-size'])).toBeGreaterThan(0);
    expect(readdirSync(work.dir).filter((f) => f.includes('.partial'))).toEqual([]);
    // enroot's own squashfs options: lzo, data left uncompressed (-noD).
    const stat = spawnSync('unsquashfs', ['-s', sqsh], { encoding: 'utf8' }).stdout;
    expect(stat).toMatch(/Compression lzo/);
    expect(stat).toMatch(/Data is uncompressed/);
  });

  test('enroot create + start runs the runscript with the %environment variables; --root --rw can write', () => {
    const name = `bi-sqsh-${process.pid}`;
    try {
      const create = enroot(['create', '--name', name, sqsh]);
      expect({ status: create.status, stderr: create.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      const start = enroot(['start', name]);
      expect({ status: start.status, stderr: start.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
      expect(start.stdout.trim()).toBe(
        'runscript: GREETING=hello from %environment QUOTED=a "quoted" value FROM_THE_REGISTRY=yes ' +
          'PATH=/opt/tools/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin args=',
      );
      // A command given to start replaces the runscript, as `apptainer exec` would.
      expect(enroot(['start', name, 'sh', '-c', 'echo "$GREETING"']).stdout.trim()).toBe('hello from %environment');
      const write = enroot(['start', '--root', '--rw', name, 'sh', '-c', 'echo written > /root-wrote-this && cat /root-wrote-this && id -u']);
      expect({ status: write.status, stdout: write.stdout.trim() }).toEqual({ status: 0, stdout: 'written\n0' });
    } finally {
      enroot(['remove', '-f', name]);
    }
    expect(enroot(['list']).stdout).not.toContain(name);
  });

  test('stage: smoke with launcher: pyxis and formats: sif,sqsh tests the .sqsh beside the given SIF; smoke-formats: sif,sqsh tests both', async () => {
    // The pipeline's child processes read the cluster's SLURM_CONF and enroot paths from this process's environment.
    const saved = { ...process.env };
    Object.assign(process.env, slurm.env);
    try {
      const { reporter, message } = await build({
        stage: 'smoke', image: outputs.image, formats: 'sif,sqsh', launcher: 'pyxis', preset: 'none', 'smoke-command': 'echo "pipeline saw $GREETING"',
        partition: 'dgx2', gpus: '2', 'cpus-per-task': '1', 'time-limit': '00:05:00', baseline: 'none',
      });
      expect(message).toBeUndefined();
      expect(reporter.lines).toContainEqual(expect.stringMatching(new RegExp(`^\\$ srun .* --container-image=${sqsh} /bin/sh -c`)));
      expect(reporter.lines).toContain('pipeline saw hello from %environment');
      // One format: smoke-json is that format's object, as before smoke-formats existed.
      expect(JSON.parse(reporter.outputs['smoke-json'])).toMatchObject({ image: sqsh, launcher: 'pyxis', passed: true });
      expect(JSON.parse(reporter.outputs['smoke-json'])).not.toHaveProperty('formats');
      // Both formats: the SIF with srun and apptainer, the .sqsh with pyxis, and a summary of the two side by side.
      // The command reports a figure that tells the runtimes apart, and the run updates a staged provenance record.
      const staging = path.join(work.dir, 'staging');
      mkdirSync(staging, { recursive: true });
      const recordFile = path.join(staging, 'demo-1.0.provenance.json');
      writeFileSync(recordFile, JSON.stringify({ tool: 'build-image', toolVersion: '0', created: '2026-01-01T00:00:00Z', source: { uri: 'x' }, buildKey: 'k', image: { sha256: 'a', size: 1 }, builder: { product: 'apptainer', version: '1', fakeroot: false } }));
      const both = await build({
        stage: 'smoke', image: outputs.image, formats: 'sif,sqsh', 'smoke-formats': 'sif,sqsh', launcher: 'pyxis', preset: 'none', 'smoke-command': `echo "both saw $GREETING"; ${runtimeFigure(2, 1)}`,
        partition: 'dgx2', gpus: '2', 'cpus-per-task': '1', 'time-limit': '00:05:00', baseline: 'none', 'staging-dir': staging, 'remote-name': 'demo-1.0.sif',
      });
      expect(both.message).toBeUndefined();
      expect(both.reporter.lines.filter((l) => l === 'both saw hello from %environment')).toHaveLength(2);
      expect(both.reporter.lines).toContainEqual(expect.stringMatching(new RegExp(`^\\$ srun .* apptainer exec .*${outputs.image} /bin/sh -c`)));
      expect(both.reporter.text()).toMatch(new RegExp(`build-image: smoke test by format[\\s\\S]*sif +${outputs.image} \\(srun\\)\\nsqsh +${sqsh} \\(pyxis\\)`));
      // smoke-json: the first format's object as with one format, and every format's by name.
      const json = JSON.parse(both.reporter.outputs['smoke-json']);
      expect(json).toMatchObject({ image: outputs.image, launcher: 'pyxis', passed: true, candidate: { metrics: { cpu_gemm_fp32_gflops: 2 } } });
      expect(json.formats.sif).toMatchObject({ image: outputs.image, passed: true, candidate: { metrics: { cpu_gemm_fp32_gflops: 2 } } });
      expect(json.formats.sqsh).toMatchObject({ image: sqsh, passed: true, candidate: { metrics: { cpu_gemm_fp32_gflops: 1 } } });
      expect(Object.keys(json.formats)).toEqual(['sif', 'sqsh']);
      // The provenance record holds the same figures, and the Markdown has both formats.
      const record = JSON.parse(readFileSync(recordFile, 'utf8'));
      expect(record.smoke.json).toEqual(json);
      expect(record.smoke.markdown).toContain('## build-image: smoke test by format');
      expect(record.smoke.markdown).toContain(`| sqsh | \`${sqsh} (pyxis)\` |`);
      expect(record.smoke.markdown).toContain('| CPU fp32 GEMM | 2.00 GFLOP/s | 1.00 GFLOP/s |');
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test('smoke-formats: sif,sqsh gates each format on its own; a failing first format does not stop the second, and smoke-json has both', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, slurm.env);
    try {
      // The .sqsh as the baseline: the SIF's figure (1, under apptainer) is half the baseline's (2, under enroot).
      const { reporter, message } = await build({
        stage: 'smoke', image: outputs.image, formats: 'sif,sqsh', 'smoke-formats': 'sif,sqsh', launcher: 'pyxis', preset: 'none', 'smoke-command': runtimeFigure(1, 2),
        partition: 'dgx2', gpus: '2', 'cpus-per-task': '1', 'time-limit': '00:05:00', baseline: sqsh,
      });
      expect(message).toMatch(new RegExp(`^${outputs.image} is slower than the baseline ${sqsh}:\\n +CPU fp32 GEMM`));
      expect(message).not.toContain(`${sqsh} is slower`);
      // The .sqsh ran after the SIF failed its gate: a pyxis job for the candidate.
      expect(reporter.lines).toContainEqual(expect.stringMatching(new RegExp(`^▸ Smoke test: ${sqsh} \\(pyxis\\)`)));
      const json = JSON.parse(reporter.outputs['smoke-json']);
      expect(json).toMatchObject({ image: outputs.image, passed: false });
      expect(json.formats.sif).toMatchObject({ passed: false, regressions: [{ metric: 'cpu_gemm_fp32_gflops', baseline: 2, candidate: 1 }] });
      expect(json.formats.sqsh).toMatchObject({ image: sqsh, baseline_image: sqsh, passed: true, regressions: [] });
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  test('srun --container-image runs the same file under pyxis with the GPUs and the image environment', () => {
    const r = spawnSync('srun', ['-p', 'dgx2', '--gres=gpu:2', `--container-image=${sqsh}`, 'sh', '-c', 'echo "$CUDA_VISIBLE_DEVICES|$GREETING"'], {
      env: slurm.env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect({ status: r.status, stderr: r.stderr }).toEqual({ status: 0, stderr: expect.any(String) });
    expect(r.stdout.trim()).toBe('0,1|hello from %environment');
  });
});

test('formats: an unknown format is one error naming the input, and nothing is built', async () => {
  const { message } = await build({ name: 'bad', definition: 'demo.def', 'registry-insecure': 'true', formats: 'sif,tar' });
  expect(message).toMatch(/input formats: unknown format 'tar': choose from sif, sqsh/);
  expect(message!.split('\n')).toHaveLength(1);
  expect(existsSync(path.join(work.dir, 'bad.sif'))).toBe(false);
  expect(existsSync(path.join(work.dir, 'bad.sqsh'))).toBe(false);
});

describe('a conversion that fails leaves nothing behind', () => {
  const fixture = path.resolve('test/fixtures/sif/busybox-gzip.sif');

  test('mksquashfs refusing its options: the error names the step, no partial .sqsh, no unpacked root', async () => {
    const dir = path.join(work.dir, 'failing');
    mkdirSync(dir);
    const tmp = path.join(dir, 'tmp');
    mkdirSync(tmp);
    const output = path.join(dir, 'busybox.sqsh');
    const error = await convertSifToSqsh({ sif: fixture, output, tmpDir: tmp, env: { ENROOT_SQUASH_OPTIONS: '-comp no-such-compressor' } }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(SqshConversionError);
    expect((error as Error).message).toMatch(/^formats: mksquashfs failed with exit code \d+: .*no-such-compressor/);
    expect(readdirSync(dir)).toEqual(['tmp']);
    expect(readdirSync(tmp)).toEqual([]);
  });

  test('a file that is not a SIF is named', async () => {
    const output = path.join(work.dir, 'not-a-sif.sqsh');
    const error = await convertSifToSqsh({ sif: path.resolve('package.json'), output }).catch((e: Error) => e);
    expect((error as Error).message).toMatch(/package\.json: /);
    expect(existsSync(output)).toBe(false);
  });
});

describe('publishing the .sqsh beside the SIF', () => {
  const [DOCS, DOCS_FILE, TOKEN] = ['sjtu-hpc/docs', 'docs/images.md', 'ghp_sqshTOKEN0123456789abcdefABCDEFGHIJKLMN'];
  let sshd: Sshd, github: GitHubServer, remoteDir: string;
  // The build job's run (build and stage), then the publish job's.
  let staged: Awaited<ReturnType<typeof build>>, published: Awaited<ReturnType<typeof build>>;
  let inputs: Record<string, string>, loginsBefore: number, publishLogins: number;
  /** Logins the server accepted so far (sshd logs each at VERBOSE). */
  const logins = () => sshd.log().match(/Accepted publickey for /g)?.length ?? 0;

  beforeAll(async () => {
    sshd = await startSshd();
    github = await startGitHubServer();
    remoteDir = path.join(sshd.root, 'img');
    mkdirSync(remoteDir, { recursive: true });
    // An older version in both formats, published by this tool (in its manifest), which keep: 1 retires.
    for (const old of ['demo-0.9.sif', 'demo-0.9.sqsh']) writeFileSync(path.join(remoteDir, old), old);
    writeFileSync(path.join(remoteDir, '.build-image.json'), JSON.stringify({ tool: 'build-image', images: {
      'demo-0.9.sif': { family: 'demo', size: 12, published: '2026-01-01T00:00:00Z' },
      'demo-0.9.sqsh': { family: 'demo', size: 13, published: '2026-01-01T00:00:00Z' },
    } }));
    for (const old of ['demo-0.9.sif', 'demo-0.9.sqsh']) utimesSync(path.join(remoteDir, old), 1_700_000_000, 1_700_000_000);
    for (const f of ['', 'demo-0.9.sif', 'demo-0.9.sqsh', '.build-image.json']) chownSync(path.join(remoteDir, f), sshd.uid, sshd.gid);
    const table = '| 软件 | 位置 | enroot |\n| ---- | ---- | ------ |\n| Demo | /old/demo.sif | /old/demo.sqsh |\n';
    github.createRepo(DOCS, { files: { [DOCS_FILE]: table } });
    github.addToken(TOKEN, { login: 'image-bot', repos: { [DOCS]: 'write' } });
    const sftp = {
      name: 'demo', 'sftp-host': '127.0.0.1', 'sftp-port': String(sshd.port), 'sftp-username': sshd.user,
      'sftp-private-key': sshd.encryptedKey, 'sftp-passphrase': sshd.passphrase, 'sftp-known-hosts': sshd.knownHostsLine,
      'remote-dir': remoteDir, 'remote-name': 'demo-1.0.sif', formats: 'sif,sqsh', keep: '1', alias: 'demo-latest.sif',
    };
    inputs = sftp;
    const dir = path.join(work.dir, 'publish');
    mkdirSync(dir);
    writeFileSync(path.join(dir, 'demo.def'), DEFINITION(registry.host));
    // A build job that stages, then a separate publish job, as a workflow splits them.
    staged = await build({ ...sftp, stage: 'build', definition: 'demo.def', 'registry-insecure': 'true', cache: 'false' }, dir);
    // The publish job keeps its copy of the provenance record in RUNNER_TEMP.
    const runnerTemp = process.env.RUNNER_TEMP;
    process.env.RUNNER_TEMP = dir;
    loginsBefore = logins();
    published = await build({ ...sftp, stage: 'publish', 'github-token': TOKEN, 'github-api-url': github.apiUrl, 'docs-repo': DOCS, 'docs-file': DOCS_FILE, software: 'Demo', 'table-sqsh-column': 'enroot' }, dir).finally(() => {
      if (runnerTemp === undefined) delete process.env.RUNNER_TEMP;
      else process.env.RUNNER_TEMP = runnerTemp;
    });
    publishLogins = logins() - loginsBefore;
  }, 180_000);

  afterAll(async () => {
    await sshd?.stop();
    await github?.stop();
  });

  test('the build job stages both files; the publish job promotes both by rename and retires the old version of each', () => {
    expect(staged.message).toBeUndefined();
    expect(staged.reporter.outputs['sqsh-staged-path']).toBe(path.join(remoteDir, '.staging', 'demo-1.0.sqsh'));
    expect(published.message).toBeUndefined();
    expect(published.reporter.outputs['remote-path']).toBe(path.join(remoteDir, 'demo-1.0.sif'));
    expect(published.reporter.outputs['sqsh-remote-path']).toBe(path.join(remoteDir, 'demo-1.0.sqsh'));
    const local = path.join(work.dir, 'publish', 'demo.sqsh');
    expect(readFileSync(path.join(remoteDir, 'demo-1.0.sqsh')).equals(readFileSync(local))).toBe(true);
    expect(readdirSync(remoteDir).filter((f) => /\.(sif|sqsh)$/.test(f)).sort()).toEqual(['demo-1.0.sif', 'demo-1.0.sqsh', 'demo-latest.sif', 'demo-latest.sqsh']);
    expect(readdirSync(path.join(remoteDir, '.staging')).filter((f) => /sqsh|sif/.test(f))).toEqual([]);
  });

  test('each format gets its alias, swapped to the new file: demo-latest.sif and demo-latest.sqsh', () => {
    expect(readlinkSync(path.join(remoteDir, 'demo-latest.sif'))).toBe('demo-1.0.sif');
    expect(readlinkSync(path.join(remoteDir, 'demo-latest.sqsh'))).toBe('demo-1.0.sqsh');
    expect(published.reporter.lines).toContain(`alias ${path.join(remoteDir, 'demo-latest.sqsh')} -> demo-1.0.sqsh`);
  });

  test('the publish job logs in once: the staged record, both promotions and the record beside the live image share one connection', () => {
    expect(published.reporter.text()).toMatch(/provenance record of .* read from /);
    expect(JSON.parse(readFileSync(path.join(remoteDir, 'demo-1.0.provenance.json'), 'utf8')).remotePath).toBe(path.join(remoteDir, 'demo-1.0.sif'));
    expect(publishLogins).toBe(1);
  });

  test('the docs PR names both paths and the table gets the .sqsh in its enroot column', async () => {
    const pulls = github.pulls(DOCS);
    expect(pulls).toHaveLength(1);
    const sqshSha = await sha256File(path.join(remoteDir, 'demo-1.0.sqsh'));
    expect(pulls[0].body).toContain(`\`${path.join(remoteDir, 'demo-1.0.sif')}\``);
    expect(pulls[0].body).toContain(`enroot image (\`srun --container-image\`): \`${path.join(remoteDir, 'demo-1.0.sqsh')}\`, sha256 \`${sqshSha}\``);
    const edited = github.file(DOCS, pulls[0].head, DOCS_FILE)!;
    expect(edited).toContain(`| Demo | ${path.join(remoteDir, 'demo-1.0.sif')} | ${path.join(remoteDir, 'demo-1.0.sqsh')} |`);
  });

  test('a second version published with keep: 1 moves both aliases to it and deletes the old version in both formats, with its record', async () => {
    // The next version's build job and publish job.
    const dir = path.join(work.dir, 'publish');
    const next = { ...inputs, 'remote-name': 'demo-1.1.sif' };
    const stagedNext = await build({ ...next, stage: 'build', definition: 'demo.def', 'registry-insecure': 'true', cache: 'false' }, dir);
    expect(stagedNext.message).toBeUndefined();
    // The publish job keeps its copy of the record in RUNNER_TEMP (else the working directory).
    const runnerTemp = process.env.RUNNER_TEMP;
    process.env.RUNNER_TEMP = dir;
    const again = await build({ ...next, stage: 'publish' }, dir).finally(() => {
      if (runnerTemp === undefined) delete process.env.RUNNER_TEMP;
      else process.env.RUNNER_TEMP = runnerTemp;
    });
    expect(again.message).toBeUndefined();
    expect(readlinkSync(path.join(remoteDir, 'demo-latest.sif'))).toBe('demo-1.1.sif');
    expect(readlinkSync(path.join(remoteDir, 'demo-latest.sqsh'))).toBe('demo-1.1.sqsh');
    expect(readdirSync(remoteDir).filter((f) => !f.startsWith('.')).sort()).toEqual(['demo-1.1.provenance.json', 'demo-1.1.sif', 'demo-1.1.sqsh', 'demo-latest.sif', 'demo-latest.sqsh']);
    expect(again.reporter.outputs.deleted.split('\n').sort()).toEqual([path.join(remoteDir, 'demo-1.0.sif'), path.join(remoteDir, 'demo-1.0.sqsh')]);
    expect(Object.keys(JSON.parse(readFileSync(path.join(remoteDir, '.build-image.json'), 'utf8')).images).sort()).toEqual(['demo-1.1.sif', 'demo-1.1.sqsh']);
  });
});
