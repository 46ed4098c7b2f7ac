// Every input the schema declares is read by loadConfig and reaches the configuration of each stage that
// declares it: with its schema default when not given, and changed when given another value.
import { describe, expect, test } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadConfig, parseDuration, type Config } from '../../src/config/config.js';
import { INPUTS, STAGE_PHASES, STAGES, type InputName, type InputSpec, type StageName } from '../../src/config/schema.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-schema-config-'));
writeFileSync(path.join(dir, 'image.def'), 'Bootstrap: docker\nFrom: ubuntu:22.04\n');
writeFileSync(path.join(dir, 'image.sif'), 'not really a SIF');
writeFileSync(path.join(dir, 'other.sif'), 'another');

const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n';

/** What every stage needs to load: a source, an image, an SFTP account with a pinned host key. */
const REQUIRED: Record<string, string> = {
  name: 'pytorch',
  source: 'docker://registry.example/lib/app:1.0',
  image: 'image.sif',
  'sftp-host': 'login.example',
  'sftp-username': 'ci',
  'sftp-private-key': KEY,
  'sftp-known-hosts': 'login.example ssh-ed25519 AAAA',
  'remote-dir': '/lustre/share/img',
};

interface Field {
  /** Where the input lands in the configuration. */
  get: (c: Config) => unknown;
  /** A value other than the default, and what the field then holds. */
  value: string;
  expected?: unknown;
  /** The default as the field holds it, where that is not the schema's text parsed by kind (a list). */
  parsedDefault?: unknown;
  /** Inputs the other value needs beside it, and required ones it replaces. */
  with?: Record<string, string | undefined>;
}

const FIELDS: Record<InputName, Field> = {
  stage: { get: (c) => c.stage, value: 'smoke', expected: 'smoke' },
  name: { get: (c) => c.name, value: 'tensorflow', expected: 'tensorflow' },
  'dry-run': { get: (c) => c.dryRun, value: 'true', expected: true },
  builder: { get: (c) => c.build.builder, value: 'singularity', expected: 'singularity' },
  source: { get: (c) => c.build.source?.uri, value: 'docker://registry.example/lib/other:2.0', expected: 'docker://registry.example/lib/other:2.0' },
  'source-tag-pattern': { get: (c) => c.build.sourceTagPattern !== undefined, value: '{major}.{minor}', expected: true },
  definition: { get: (c) => c.build.definition, value: 'image.def', expected: path.join(dir, 'image.def'), with: { source: undefined } },
  'build-args': { get: (c) => c.build.buildArgs, value: 'A=1', expected: { A: '1' }, with: { source: undefined, definition: 'image.def' } },
  output: { get: (c) => c.build.output, value: 'out.sif', expected: path.join(dir, 'out.sif') },
  fakeroot: { get: (c) => c.build.fakeroot, value: 'true', expected: 'true' },
  sudo: { get: (c) => c.build.sudo, value: 'false', expected: 'false' },
  'registry-username': { get: (c) => c.build.registry?.username, value: 'bot', expected: 'bot', with: { 'registry-password': 'pw' } },
  'registry-password': { get: (c) => c.build.registry?.password, value: 'pw2', expected: 'pw2', with: { 'registry-username': 'bot' } },
  'registry-insecure': { get: (c) => c.build.registryInsecure, value: 'true', expected: true },
  labels: { get: (c) => c.build.labels, value: 'org.example=1', expected: { 'org.example': '1' } },
  compression: { get: (c) => c.build.compression, value: 'zstd', expected: 'zstd' },
  'build-timeout': { get: (c) => c.build.timeoutMs, value: '1h', expected: 3_600_000 },
  'pull-stall-timeout': { get: (c) => c.build.pullStallMs, value: '90s', expected: 90_000 },
  'tmp-dir': { get: (c) => c.build.tmpDir, value: dir, expected: dir },
  cache: { get: (c) => c.build.cache, value: 'false', expected: 'false' },
  force: { get: (c) => c.build.force, value: 'true', expected: true },
  formats: { get: (c) => c.build.formats, value: 'sif,sqsh', expected: ['sif', 'sqsh'], parsedDefault: ['sif'] },
  'smoke-formats': { get: (c) => c.smoke.formats, value: 'sqsh,sif', expected: ['sif', 'sqsh'] },
  'table-sqsh-column': { get: (c) => c.docs.sqshColumn, value: 'enroot', expected: 'enroot' },
  'key-inputs': { get: (c) => c.build.keyInputs, value: 'nightly 2026-11-30', expected: ['nightly 2026-11-30'] },
  skipped: { get: (c) => c.skipped, value: 'true', expected: true },
  image: { get: (c) => c.image, value: 'other.sif', expected: path.join(dir, 'other.sif') },
  'sftp-host': { get: (c) => c.remote.sftp?.host, value: 'dtn.example', expected: 'dtn.example' },
  'sftp-port': { get: (c) => c.remote.sftp?.port, value: '2222', expected: 2222 },
  'sftp-username': { get: (c) => c.remote.sftp?.username, value: 'other', expected: 'other' },
  'sftp-private-key': { get: (c) => c.remote.sftp?.privateKey, value: KEY.replace('AAAA', 'BBBB'), expected: KEY.replace('AAAA', 'BBBB') },
  'sftp-passphrase': { get: (c) => c.remote.sftp?.passphrase, value: 'phrase', expected: 'phrase' },
  'sftp-known-hosts': { get: (c) => c.remote.sftp?.knownHosts, value: 'dtn ssh-ed25519 BBBB', expected: 'dtn ssh-ed25519 BBBB' },
  'sftp-host-fingerprint': { get: (c) => c.remote.sftp?.fingerprint, value: `SHA256:${'A'.repeat(43)}`, expected: `SHA256:${'A'.repeat(43)}` },
  'sftp-proxy': { get: (c) => c.remote.sftp?.proxy, value: 'socks5://u:p@proxy.example:1080', expected: { protocol: 'socks5', host: 'proxy.example', port: 1080, username: 'u', password: 'p' } },
  'staging-dir': { get: (c) => c.remote.stagingDir, value: '/scratch/staging', expected: '/scratch/staging' },
  'remote-dir': { get: (c) => c.remote.remoteDir, value: '/lustre/other', expected: '/lustre/other' },
  'remote-name': { get: (c) => c.remote.remoteName, value: 'pytorch-new.sif', expected: 'pytorch-new.sif' },
  immutable: { get: (c) => c.remote.immutable, value: 'true', expected: true },
  launcher: { get: (c) => c.smoke.launcher, value: 'sbatch', expected: 'sbatch' },
  preset: { get: (c) => c.smoke.preset, value: 'none', expected: 'none' },
  'smoke-command': { get: (c) => c.smoke.command, value: 'nvidia-smi', expected: 'nvidia-smi' },
  partition: { get: (c) => c.smoke.partition, value: 'a100', expected: 'a100' },
  gpus: { get: (c) => c.smoke.gpus, value: '4', expected: 4 },
  'cpus-per-task': { get: (c) => c.smoke.cpusPerTask, value: '16', expected: 16 },
  mem: { get: (c) => c.smoke.mem, value: '64G', expected: '64G' },
  'time-limit': { get: (c) => c.smoke.timeLimit, value: '01:00:00', expected: '01:00:00' },
  account: { get: (c) => c.smoke.account, value: 'acct', expected: 'acct' },
  qos: { get: (c) => c.smoke.qos, value: 'debug', expected: 'debug' },
  'slurm-args': { get: (c) => c.smoke.slurmArgs, value: '--exclusive --comment "a b"', expected: ['--exclusive', '--comment', 'a b'] },
  'smoke-timeout': { get: (c) => c.smoke.timeoutMs, value: '5m', expected: 300_000 },
  baseline: { get: (c) => c.smoke.baseline, value: 'none', expected: 'none' },
  'max-regression': { get: (c) => c.smoke.maxRegression, value: '5%', expected: 0.05 },
  nvccli: { get: (c) => c.smoke.nvccli, value: 'true', expected: true },
  alias: { get: (c) => c.publish.alias, value: 'pytorch-latest.sif', expected: 'pytorch-latest.sif' },
  'staged-sha256': { get: (c) => c.publish.stagedSha256, value: 'a'.repeat(64), expected: 'a'.repeat(64) },
  keep: { get: (c) => c.publish.keep, value: '7', expected: 7 },
  verify: { get: (c) => c.publish.verify, value: 'size', expected: 'size' },
  'sftp-channels': { get: (c) => c.publish.channels, value: '4', expected: 4 },
  'lock-stale': { get: (c) => c.publish.lockStaleMs, value: '5m', expected: 300_000 },
  'lock-timeout': { get: (c) => c.publish.lockTimeoutMs, value: '1h', expected: 3_600_000 },
  'github-token': { get: (c) => c.docs.token, value: 'ghp_x', expected: 'ghp_x' },
  'github-api-url': { get: (c) => c.docs.apiUrl, value: 'https://ghe.example/api/v3', expected: 'https://ghe.example/api/v3' },
  'docs-repo': { get: (c) => c.docs.repo, value: 'hpc/docs', expected: 'hpc/docs', with: { 'github-token': 't', 'docs-file': 'images.rst' } },
  'docs-file': { get: (c) => c.docs.file, value: 'docs/images.md', expected: 'docs/images.md' },
  'docs-base': { get: (c) => c.docs.base, value: 'develop', expected: 'develop' },
  software: { get: (c) => c.docs.software, value: 'PyTorch', expected: 'PyTorch' },
  'table-key-column': { get: (c) => c.docs.keyColumn, value: 'Software', expected: 'Software' },
  'table-value-column': { get: (c) => c.docs.valueColumn, value: 'Location', expected: 'Location' },
  'pr-branch': { get: (c) => c.docs.branch, value: 'images/pytorch', expected: 'images/pytorch' },
  'pr-title': { get: (c) => c.docs.title, value: 'New PyTorch', expected: 'New PyTorch' },
  'pr-labels': { get: (c) => c.docs.labels, value: 'images, automated', expected: ['images', 'automated'] },
  'pr-reviewers': { get: (c) => c.docs.reviewers, value: 'alice\nbob', expected: ['alice', 'bob'] },
  'pr-draft': { get: (c) => c.docs.draft, value: 'true', expected: true },
};

/**
 * Stages that run a declaring phase but ignore the input by design: `all` builds, so the build job's `skipped`
 * output (for smoke and publish run as separate jobs) means nothing to it.
 */
const IGNORED_BY: Partial<Record<InputName, StageName[]>> = { skipped: ['all'] };

/** The stages that run a phase the input declares (all of them for inputs every stage shares). */
function declaringStages(spec: InputSpec): StageName[] {
  if (spec.phases.length === 0) return [...STAGES];
  const ignoring = IGNORED_BY[spec.name as InputName] ?? [];
  return STAGES.filter((stage) => STAGE_PHASES[stage].some((phase) => spec.phases.includes(phase)) && !ignoring.includes(stage));
}

/** The schema default as the configuration holds it. */
function parsedDefault(spec: InputSpec): unknown {
  const text = spec.default!;
  switch (spec.kind.type) {
    case 'boolean':
      return text === 'true';
    case 'integer':
      return Number(text);
    case 'duration':
      return parseDuration(text);
    case 'percent':
      return Number.parseFloat(text) / 100;
    default:
      return text;
  }
}

describe('every schema input reaches the configuration of the stages that declare it', () => {
  test('the table below names every input of the schema, and only those', () => {
    expect(Object.keys(FIELDS).sort()).toEqual(INPUTS.map((i) => i.name).sort());
  });

  const cases = INPUTS.flatMap((spec) => declaringStages(spec).map((stage) => [spec.name, stage, spec] as const));

  test.each(cases)('%s, read by the %s stage: its schema default when not given, the value given otherwise', (name, stage, spec) => {
    const field = FIELDS[name as InputName];
    // `stage` chooses the stage itself; passing one to loadConfig would override it.
    const stageOption = name === 'stage' ? undefined : stage;
    const loadAs = (inputs: Record<string, string | undefined>) => {
      const all: Record<string, string | undefined> = { ...REQUIRED, ...inputs };
      return loadConfig((n) => all[n], { cwd: dir, stage: stageOption, env: {}, now: new Date('2026-11-30T12:00:00Z') });
    };
    const base = loadAs({});
    if (spec.default !== undefined && name !== 'stage') expect(field.get(base)).toEqual('parsedDefault' in field ? field.parsedDefault : parsedDefault(spec));
    const changed = loadAs({ ...field.with, [name]: field.value });
    expect(field.get(changed)).toEqual(field.expected);
    expect(field.get(changed)).not.toEqual(field.get(base));
  });

  test('the smoke stage reads the inputs that locate and run the image', () => {
    const smoke = INPUTS.filter((i) => i.phases.includes('smoke')).map((i) => i.name);
    expect(smoke).toEqual(expect.arrayContaining(['name', 'builder', 'image', 'remote-dir', 'remote-name', 'staging-dir']));
  });
});
