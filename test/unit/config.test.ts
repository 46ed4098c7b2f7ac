import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ConfigError, loadConfig, secretValues, type Problem } from '../../src/config/config.js';
import { INPUTS } from '../../src/config/schema.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-config-'));
const def = path.join(dir, 'image.def');
writeFileSync(def, 'Bootstrap: docker\nFrom: ubuntu:22.04\n');

function problems(inputs: Record<string, string>): Problem[] {
  try {
    loadConfig((name) => inputs[name], { cwd: dir });
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('configuration', () => {
  test('a definition build gets defaults for everything else', () => {
    const config = loadConfig((name) => ({ definition: 'image.def', name: 'pytorch' })[name], { cwd: dir });
    expect(config.stage).toBe('build');
    expect(config.build).toMatchObject({
      builder: 'auto',
      fakeroot: 'auto',
      compression: 'gzip',
      definition: def,
      output: path.join(dir, 'pytorch.sif'),
      buildArgs: {},
      dryRun: false,
    });
  });

  test('multi-line build args and labels become records; comments and blank lines are ignored', () => {
    const config = loadConfig(
      (name) => ({ definition: 'image.def', 'build-args': 'A=1\n\n# comment\nB = two words\n', labels: 'org.x=y' })[name],
      { cwd: dir },
    );
    expect(config.build.buildArgs).toEqual({ A: '1', B: 'two words' });
    expect(config.build.labels).toEqual({ 'org.x': 'y' });
  });

  test('a docker source is parsed into registry, repository and tag', () => {
    const config = loadConfig((name) => ({ source: 'docker://nvcr.io/nvidia/pytorch:24.10-py3' })[name], { cwd: dir });
    expect(config.build.source).toMatchObject({ kind: 'docker', ref: { registry: 'nvcr.io', repository: 'nvidia/pytorch', tag: '24.10-py3' } });
    expect(config.build.output).toBe(path.join(dir, 'image.sif'));
  });

  test.each([
    [{ source: 'docker://x', definition: 'image.def' }, 'source', /either `source` or `definition`, not both/],
    [{}, 'source', /nothing to build/],
    [{ source: 'docker://x', builder: 'docker' }, 'builder', /must be one of auto, apptainer, singularity, enroot, u2cb; got 'docker'/],
    [{ source: 'oras://x/y:1', builder: 'enroot' }, 'source', /builder enroot imports from a registry: give a docker:\/\/ source \(got oras\)/],
    [{ source: 'docker://x', builder: 'u2cb', 'registry-username': 'u', 'registry-password': 'p' }, 'registry-username', /builder u2cb cannot pass registry credentials to the U2CB service/],
    [{ definition: 'missing.def' }, 'definition', /file not found: missing.def/],
    [{ source: 'docker://x', output: 'nowhere/out.sif' }, 'output', /directory does not exist/],
    [{ definition: 'image.def', 'build-args': 'A=1\nNOVALUE' }, 'build-args', /line 2: expected KEY=VALUE.*got 'NOVALUE'/],
    [{ source: 'http://example.com/x.sif' }, 'source', /unsupported source scheme 'http:'/],
    [{ source: 'docker-archive:missing.tar' }, 'source', /file not found: missing.tar/],
    [{ source: 'docker://UPPER/Case' }, 'source', /invalid repository name/],
    [{ source: 'docker://x', fakeroot: 'maybe' }, 'fakeroot', /must be one of auto, true, false/],
    [{ source: 'docker://x', 'dry-run': 'perhaps' }, 'dry-run', /must be true or false/],
    [{ source: 'docker://x', 'registry-username': 'u' }, 'registry-password', /required when `registry-username` is set/],
    [{ source: 'docker://x', name: '../evil' }, 'name', /must be letters, digits/],
    [{ source: 'docker://x', stage: 'deploy' }, 'stage', /must be one of build, smoke, publish, all/],
    [{ source: 'docker://x', compression: 'brotli' }, 'compression', /must be one of gzip, xz, zstd, lz4/],
  ])('%j is refused with a message naming %s', (inputs, input, message) => {
    const found = problems(inputs as Record<string, string>);
    expect(found).toHaveLength(1);
    expect(found[0].input).toBe(input);
    expect(found[0].message).toMatch(message);
  });

  const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n';
  const sftp = { 'sftp-host': 'data.hpc.sjtu.edu.cn', 'sftp-username': 'svc', 'sftp-private-key': key, 'remote-dir': '/lustre/share/img', name: 'pytorch' };

  test('SFTP inputs make a remote target; staging defaults to a folder beside the live images', () => {
    const config = loadConfig((n) => ({ ...sftp, definition: 'image.def', 'sftp-host-fingerprint': `SHA256:${'A'.repeat(43)}` })[n], { cwd: dir, env: {} });
    expect(config.remote).toEqual({
      immutable: false,
      sftp: { host: 'data.hpc.sjtu.edu.cn', port: 22, username: 'svc', privateKey: key, passphrase: undefined, knownHosts: undefined, fingerprint: `SHA256:${'A'.repeat(43)}` },
      stagingDir: '/lustre/share/img/.staging',
      remoteDir: '/lustre/share/img',
      remoteName: 'pytorch.sif',
    });
    expect(config.publish.channels).toBe('auto');
    const fixed = loadConfig((n) => ({ ...sftp, definition: 'image.def', 'sftp-channels': '4', 'sftp-host-fingerprint': `SHA256:${'A'.repeat(43)}` })[n], { cwd: dir, env: {} });
    expect(fixed.publish.channels).toBe(4);
  });

  describe('remote-name templates', () => {
    const target = { ...sftp, 'sftp-host-fingerprint': `SHA256:${'A'.repeat(43)}` };
    const env = { GITHUB_REF: 'refs/tags/v2.1.0', GITHUB_SHA: 'abcdef0123456789abcdef0123456789abcdef01' };
    const now = new Date('2026-11-30T23:59:00Z');
    const load = (inputs: Record<string, string>, environment: NodeJS.ProcessEnv = env) => loadConfig((n) => ({ ...target, ...inputs })[n], { cwd: dir, env: environment, now });

    test('fill {name}, {tag}, {date}, {git-tag} and {short-sha}', () => {
      const config = load({ source: 'docker://nvcr.io/nvidia/pytorch:24.10-py3', 'remote-name': '{name}-{tag}-{date}-{git-tag}-{short-sha}.sif' });
      expect(config.remote.remoteName).toBe('pytorch-24.10-py3-20261130-v2.1.0-abcdef0.sif');
    });

    test("{tag} of a definition is its last stage's From tag, build arguments applied", () => {
      writeFileSync(path.join(dir, 'two.def'), 'Bootstrap: docker\nFrom: alpine:3\nStage: a\n\nBootstrap: docker\nFrom: nvcr.io/nvidia/pytorch:{{ TAG }}\n');
      expect(load({ definition: 'two.def', 'build-args': 'TAG=24.11-py3', 'remote-name': 'pytorch-{tag}.sif' }).remote.remoteName).toBe('pytorch-24.11-py3.sif');
    });

    test('a tag-triggered run is immutable by default; a branch run is not; the input decides when given', () => {
      expect(load({ definition: 'image.def' }).remote.immutable).toBe(true);
      expect(load({ definition: 'image.def' }, { GITHUB_REF: 'refs/heads/main' }).remote.immutable).toBe(false);
      expect(load({ definition: 'image.def', immutable: 'false' }).remote.immutable).toBe(false);
    });

    test.each([
      [{ 'remote-name': 'x-{version}.sif' }, env, /^unknown placeholder \{version\}; the placeholders are \{name\}, \{tag\}, \{date\}, \{git-tag\}, \{short-sha\} \(in 'x-\{version\}.sif'\)$/],
      [{ 'remote-name': 'x-{git-tag}.sif' }, { GITHUB_REF: 'refs/heads/main' }, /^\{git-tag\} has no value in this run: the run was not triggered by a tag \(GITHUB_REF is 'refs\/heads\/main'\)/],
      [{ 'remote-name': 'x-{short-sha}.sif' }, {}, /^\{short-sha\} has no value in this run: GITHUB_SHA is not set/],
      [{ 'remote-name': 'x-{tag}.sif', definition: '', source: 'docker://alpine@sha256:' + 'a'.repeat(64) }, env, /^\{tag\} has no value in this run: the source .* is pinned by digest only/],
    ])('%j is refused, naming remote-name and the reason', (inputs, environment, message) => {
      let error: unknown;
      try {
        load({ definition: 'image.def', ...inputs } as Record<string, string>, environment);
      } catch (e) {
        error = e;
      }
      const found = (error as ConfigError).problems;
      expect(found.map((p) => p.input)).toEqual(['remote-name']);
      expect(found[0].message).toMatch(message);
    });
  });

  test.each([
    [{}, 'sftp-known-hosts', /no trust on first use.*ssh-keyscan -p 22 data.hpc.sjtu.edu.cn/],
    [{ 'sftp-host-fingerprint': 'MD5:aa:bb' }, 'sftp-host-fingerprint', /must be SHA256:/],
    [{ 'sftp-known-hosts': 'x', 'sftp-private-key': 'hunter2' }, 'sftp-private-key', /is not a private key/],
    [{ 'sftp-known-hosts': 'x', 'remote-dir': 'relative/dir' }, 'remote-dir', /must be an absolute path/],
    [{ 'sftp-known-hosts': 'x', 'sftp-port': '99999' }, 'sftp-port', /whole number from 1 to 65535/],
    [{ 'sftp-known-hosts': 'x', 'sftp-channels': '0' }, 'sftp-channels', /^must be auto or a whole number from 1 to 16; got '0'$/],
    [{ 'sftp-known-hosts': 'x', 'sftp-channels': 'many' }, 'sftp-channels', /must be auto or a whole number from 1 to 16/],
    [{ 'sftp-known-hosts': 'x', 'sftp-proxy': 'ftp://u:hunter2@proxy:21' }, 'sftp-proxy', /must be an http:\/\/ \(HTTP CONNECT\) or socks5:\/\/ URL; got ftp:\/\/proxy$/],
    [{ 'sftp-known-hosts': 'x', 'sftp-proxy': 'proxy.example:3128' }, 'sftp-proxy', /must be .*http:\/\/proxy.example.com:3128 or socks5:/],
    [{ 'sftp-known-hosts': 'x', 'sftp-proxy': 'http://u:hunter2@proxy:3128/path' }, 'sftp-proxy', /only scheme, host and port/],
  ])('stage inputs %j are refused with a message naming %s', (extra, input, message) => {
    const found = problems({ ...sftp, definition: 'image.def', ...extra } as Record<string, string>);
    expect(found.map((p) => p.input)).toEqual([input]);
    expect(found[0].message).toMatch(message);
    // The refused key never appears in a message.
    expect(found[0].message).not.toContain('hunter2');
  });

  test('the password of sftp-proxy and of the proxy variables is masked, not the rest of the URL', () => {
    const read = (n: string) => ({ 'sftp-proxy': 'socks5://svc:s%40cret@proxy.example:1080', 'sftp-passphrase': 'phrase' })[n];
    const secrets = secretValues(read, INPUTS, { HTTPS_PROXY: 'http://bot:env-pass@proxy.example:3128', NO_PROXY: 'localhost' });
    expect(secrets.sort()).toEqual(['env-pass', 'phrase', 's%40cret', 's@cret']);
    const config = loadConfig((n) => ({ ...sftp, definition: 'image.def', 'sftp-known-hosts': 'x', 'sftp-proxy': 'socks5://svc:s%40cret@proxy.example:1080' })[n], { cwd: dir, env: {} });
    expect(config.remote.sftp?.proxy).toEqual({ protocol: 'socks5', host: 'proxy.example', port: 1080, username: 'svc', password: 's@cret' });
  });

  test('smoke inputs are typed: durations, percentages, shell-split Slurm arguments', () => {
    const config = loadConfig((n) => ({ stage: 'smoke', launcher: 'sbatch', gpus: '2', 'smoke-timeout': '1h30m', 'max-regression': '5%', 'slurm-args': "--exclusive --comment 'nightly refresh'" })[n], { cwd: dir });
    expect(config.smoke).toMatchObject({ launcher: 'sbatch', gpus: 2, timeoutMs: 5_400_000, maxRegression: 0.05, slurmArgs: ['--exclusive', '--comment', 'nightly refresh'], partition: 'dgx2' });
  });

  test.each([
    [{ 'smoke-timeout': 'soon' }, 'smoke-timeout', /duration such as 90s/],
    [{ 'max-regression': '150%' }, 'max-regression', /percentage from 0% to 99%/],
    [{ 'max-regression': '99.9%' }, 'max-regression', /percentage from 0% to 99%/],
    [{ 'max-regression': '' }, 'max-regression', /is empty: give a percentage/],
    [{ 'max-regression': '-5%' }, 'max-regression', /cannot be negative/],
    [{ partition: 'dgx2 -o /tmp/x' }, 'partition', /Slurm partition name/],
    [{ partition: 'dgx2\ntouch /tmp/x' }, 'partition', /no spaces or newlines/],
    [{ account: 'hpc;id' }, 'account', /Slurm account name/],
    [{ qos: 'normal debug' }, 'qos', /Slurm qos name/],
    [{ mem: '64 G' }, 'mem', /Slurm memory size/],
    [{ mem: '64G\n#SBATCH -o x' }, 'mem', /Slurm memory size/],
    [{ 'time-limit': '1 hour' }, 'time-limit', /Slurm time/],
    [{ 'slurm-args': "--comment 'open" }, 'slurm-args', /unterminated single quote/],
    [{ 'slurm-args': '--x; rm -rf /' }, 'slurm-args', /no shell operators/],
    [{ launcher: 'mpirun' }, 'launcher', /must be one of direct, srun, sbatch/],
  ])('smoke inputs %j are refused with a message naming %s', (extra, input, message) => {
    const found = problems({ stage: 'smoke', ...extra } as Record<string, string>);
    expect(found.map((p) => p.input)).toEqual([input]);
    expect(found[0].message).toMatch(message);
  });

  const slurmFields = ['partition', 'account', 'qos', 'mem', 'time-limit', 'gpus', 'cpus-per-task'];
  const hostile = ['\n', ' ', ';'].flatMap((c) => slurmFields.map((field) => [field, `${field === 'gpus' || field === 'cpus-per-task' ? '2' : field === 'mem' ? '64G' : field === 'time-limit' ? '00:15:00' : 'dgx2'}${c}touch /tmp/x`] as const));
  test.each(hostile)('Slurm field %s refuses %j at configuration time, naming the field', (field, value) => {
    const found = problems({ stage: 'smoke', [field]: value } as Record<string, string>);
    expect(found.map((p) => p.input)).toEqual([field]);
  });

  test('the largest allowed slowdown and Slurm times are accepted as Slurm and the message state them', () => {
    const read = (extra: Record<string, string>) => loadConfig((n) => ({ stage: 'smoke', ...extra } as Record<string, string>)[n], { cwd: dir }).smoke;
    expect(read({ 'max-regression': '99%' }).maxRegression).toBeCloseTo(0.99);
    expect(read({ 'max-regression': '70%' }).maxRegression).toBeCloseTo(0.7);
    for (const t of ['30', '15:00', '00:15:00', '1-0', '1-12:00', '2-00:00:00', 'UNLIMITED']) expect(read({ 'time-limit': t }).timeLimit).toBe(t);
    expect(read({ mem: '64G' }).mem).toBe('64G');
  });

  test.each(['org.opencontainers.image.source', 'io.github.sjtu-hpc.build-image.run-url'])('a user label %s (provenance the tool writes) is refused', (key) => {
    const found = problems({ definition: 'image.def', labels: `${key}=https://example.com/forged` } as Record<string, string>);
    expect(found).toEqual([{ input: 'labels', message: `${key} is provenance that build-image writes itself; it cannot be set by labels` }]);
  });

  test('a docs PR needs a token, a file and a row key', () => {
    const found = problems({ stage: 'publish', ...sftp, name: '', 'sftp-known-hosts': 'x', 'remote-name': 'p.sif', 'docs-repo': 'sjtu-hpc/docs' });
    expect(found.map((p) => p.input).sort()).toEqual(['docs-file', 'github-token', 'software']);
  });

  test('staged-sha256 takes the stage\'s output as printed, with or without "sha256:", and refuses anything else', () => {
    const publish = { stage: 'publish', ...sftp, 'sftp-known-hosts': 'x', 'remote-name': 'p.sif' };
    const hex = 'ab'.repeat(32);
    const read = (value: string) => loadConfig((n) => ({ ...publish, 'staged-sha256': value } as Record<string, string>)[n], { cwd: dir }).publish.stagedSha256;
    expect(read(hex)).toBe(hex);
    expect(read(`sha256:${hex.toUpperCase()}`)).toBe(hex);
    const found = problems({ ...publish, 'staged-sha256': 'abc123' } as Record<string, string>);
    expect(found).toEqual([{ input: 'staged-sha256', message: expect.stringMatching(/64 hexadecimal digits/) }]);
  });

  test('with formats: sif,sqsh the alias names the SIF link; one ending in .sqsh, or whose .sqsh alias is the .sqsh itself, is refused', () => {
    const publish = { stage: 'publish', ...sftp, 'sftp-known-hosts': 'x', 'remote-name': 'p-1.0.sif', formats: 'sif,sqsh' };
    const read = (alias: string) => loadConfig((n) => ({ ...publish, alias } as Record<string, string>)[n], { cwd: dir }).publish.alias;
    expect(read('p-latest.sif')).toBe('p-latest.sif');
    expect(read('p-latest')).toBe('p-latest');
    expect(problems({ ...publish, alias: 'p-latest.sqsh' } as Record<string, string>)).toEqual([{ input: 'alias', message: expect.stringMatching(/^must not end in \.sqsh with formats: sif,sqsh/) }]);
    expect(problems({ ...publish, alias: 'p-1.0.simg' } as Record<string, string>)).toEqual([{ input: 'alias', message: expect.stringMatching(/the \.sqsh's alias 'p-1\.0\.sqsh' would be the \.sqsh's own name/) }]);
    // With the SIF alone, the same names are plain aliases.
    expect(loadConfig((n) => ({ ...publish, formats: 'sif', alias: 'p-latest.sqsh' } as Record<string, string>)[n], { cwd: dir }).publish.alias).toBe('p-latest.sqsh');
  });

  test('a build does not validate smoke or docs inputs it will not use', () => {
    expect(() => loadConfig((n) => ({ definition: 'image.def', 'smoke-timeout': 'soon' })[n], { cwd: dir })).not.toThrow();
  });

  test('builder enroot writes NAME.sqsh by default; u2cb a SIF', () => {
    const read = (builder: string) => loadConfig((name) => ({ source: 'docker://x', name: 'pytorch', builder })[name], { cwd: dir }).build.output;
    expect(read('enroot')).toBe(path.join(dir, 'pytorch.sqsh'));
    expect(read('u2cb')).toBe(path.join(dir, 'pytorch.sif'));
  });

  test('all problems are reported at once', () => {
    const found = problems({ builder: 'x', fakeroot: 'y' });
    expect(found.map((p) => p.input).sort()).toEqual(['builder', 'fakeroot', 'source']);
  });
});
