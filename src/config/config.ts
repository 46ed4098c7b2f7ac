// Turns raw input strings (from action inputs or CLI flags) into one typed, validated configuration. Every
// problem is collected and reported together, each naming its input and what is accepted.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { parse as shellParse } from 'shell-quote';
import { defaultOf, STAGE_PHASES, type InputSpec, type Phase, type StageName } from './schema.js';
import { readBuild } from './build-inputs.js';
import type { BuildConfig, Config, DocsConfig, PublishConfig, RemoteConfig, SmokeConfig } from './config-types.js';
import { IMAGE_FORMATS, sqshRemoteName, type ImageFormat } from '../image/format-names.js';
import { expandName, nameValues, nameWithTag, type NameValues } from './naming.js';
import { ConfigError, fileNameProblem, isHttpUrl, NAME_PATTERN, quote, Reader, unterminatedQuote, type InputReader } from './reader.js';
import { parseSshProxy } from '../publish/proxy-url.js';
import { proxySecrets, urlSecrets } from '../util/proxy.js';

export type * from './config-types.js';
export { ConfigError, fileNameProblem, parseDuration, parsePairs, unterminatedQuote, type InputReader, type Problem } from './reader.js';

/** Which parts of the configuration a command or stage reads: the schema's phases. */
export type Part = Phase;

// Slurm's own grammar (sbatch(1): --mem, --time).
const SLURM_MEM = /^\d+[KMGT]?$/;
const SLURM_TIME = /^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2}|UNLIMITED|unlimited|infinite)$/;

export function loadConfig(
  read: InputReader,
  options: { cwd?: string; stage?: StageName; parts?: Part[]; env?: NodeJS.ProcessEnv; now?: Date } = {},
): Config {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const r = new Reader(read);
  const stage = options.stage ?? r.enum('stage');
  const parts = new Set<Part>(options.parts ?? STAGE_PHASES[stage]);
  const nameText = r.rawString('name');
  const name = nameText !== undefined && NAME_PATTERN.test(nameText) ? nameText : undefined;
  if (nameText !== undefined && !name) {
    r.problem('name', `must be letters, digits, '.', '_' or '-' (starting with a letter or digit); got ${JSON.stringify(nameText)}`);
  }
  const dryRun = r.boolean('dry-run');
  const imageText = r.string('image');
  const image = imageText ? path.resolve(cwd, imageText) : undefined;

  const quiet = new Reader(read); // reads parts that this stage does not use, without reporting problems
  // A separate stage or publish job moves the .sqsh too: `formats` is checked wherever a file is built or moved.
  const formats = readFormats(['build', 'stage', 'publish'].some((p) => parts.has(p as Part)) ? r : quiet);
  const build: BuildConfig = { ...readBuild(parts.has('build') ? r : quiet, cwd, name, dryRun, parts.has('build')), formats };
  const sourceText = r.string('source');
  const definitionText = r.string('definition');
  const names = nameValues({
    name,
    source: sourceText,
    definition: definitionText ? path.resolve(cwd, definitionText) : undefined,
    buildArgs: build.buildArgs,
    env,
    now: options.now ?? new Date(),
    tagFollowsPattern: parts.has('build') && build.sourceTagPattern !== undefined,
  });
  const remote = readRemote(r, name, nameText !== undefined, {
    sftpRequired: parts.has('publish') || (parts.has('stage') && !parts.has('build')),
    check: parts.has('stage') || parts.has('publish'),
  }, names);
  // A release (a tag-triggered run) never overwrites a published name unless told to.
  const immutableText = r.string('immutable');
  const immutable = immutableText === undefined ? (env.GITHUB_REF ?? '').startsWith('refs/tags/') : r.boolean('immutable');
  const smoke = readSmoke(parts.has('smoke') ? r : quiet);
  const publish = { ...readPublish(parts.has('publish') ? r : quiet, remote.remoteName, formats), channels: readChannels(parts.has('stage') ? r : quiet) };
  const docs = readDocs(parts.has('docs') ? r : quiet);
  if (parts.has('docs') && docs.repo) {
    if (!/^[\w.-]+\/[\w.-]+$/.test(docs.repo)) r.problem('docs-repo', `must be OWNER/REPO; got ${quote(docs.repo)}`);
    if (!docs.token) r.problem('github-token', 'required with `docs-repo`: a token with write access to the docs repository');
    if (!docs.file) r.problem('docs-file', 'required with `docs-repo`: the file that holds the preset image table');
    if (!docs.software && !name) r.problem('software', 'required with `docs-repo` when `name` is not set: the row key in the table');
  }
  // A smoke dry run prints the job for a path that may exist only on the cluster: it warns there instead.
  if ((stage === 'publish' || (stage === 'smoke' && !dryRun)) && image && !existsSync(image)) {
    r.problem('image', `file not found: ${imageText}`);
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  const skipped = stage === 'smoke' || stage === 'publish' ? r.boolean('skipped') : false;
  return { stage, name, dryRun, image, skipped, build, remote: { ...remote, immutable }, smoke, publish, docs };
}

function readRemote(r: Reader, name: string | undefined, nameGiven: boolean, need: { sftpRequired: boolean; check: boolean }, names: NameValues): RemoteConfig {
  const host = r.string('sftp-host');
  const remoteDir = r.string('remote-dir');
  const template = r.string('remote-name');
  let remoteName = template ?? (name ? `${name}.sif` : undefined);
  if (template !== undefined && /[{}]/.test(template)) {
    const expanded = expandName(template, names);
    if ('problem' in expanded) {
      // Also for a smoke job: it finds the staged and the published image by this name.
      r.problem('remote-name', `${expanded.problem} (in ${quote(template)})`);
      remoteName = undefined;
    } else remoteName = expanded.value;
  }
  const port = r.integer('sftp-port');
  // Staging sits beside the live images by default, so promotion is a rename within one file system.
  const validRemoteDir = remoteDir?.startsWith('/') ? remoteDir : undefined;
  const stagingDir = r.string('staging-dir') ?? (validRemoteDir ? path.posix.join(validRemoteDir, '.staging') : undefined);
  if (!need.check) return { remoteDir, remoteName, stagingDir };
  if (!host) {
    if (need.sftpRequired) r.problem('sftp-host', 'required for this stage: the cluster host to upload to');
    return { remoteDir, remoteName, stagingDir };
  }
  const username = r.string('sftp-username');
  const privateKey = r.raw('sftp-private-key');
  const passphrase = r.raw('sftp-passphrase');
  const knownHosts = r.raw('sftp-known-hosts');
  const fingerprint = r.string('sftp-host-fingerprint');
  const proxyText = r.string('sftp-proxy');
  const proxy = proxyText === undefined ? undefined : parseSshProxy(proxyText);
  if (proxy && 'problem' in proxy) r.problem('sftp-proxy', proxy.problem);
  if (!username) r.problem('sftp-username', 'required with `sftp-host`');
  if (!privateKey) r.problem('sftp-private-key', 'required with `sftp-host`: the private key text (OpenSSH or PEM)');
  else if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(privateKey)) {
    r.problem('sftp-private-key', 'is not a private key: expected the text of an OpenSSH or PEM key (-----BEGIN ... PRIVATE KEY-----)');
  }
  if (!knownHosts && !fingerprint) {
    r.problem(
      'sftp-known-hosts',
      `host key pinning is required (there is no trust on first use): set sftp-known-hosts to the output of \`ssh-keyscan -p ${port} ${host}\`, or sftp-host-fingerprint to its SHA256:... fingerprint`,
    );
  }
  if (fingerprint && !/^SHA256:[A-Za-z0-9+/]{43}=?$/.test(fingerprint)) {
    r.problem('sftp-host-fingerprint', `must be SHA256: and 43 base64 characters, as \`ssh-keygen -l\` prints; got ${quote(fingerprint)}`);
  }
  if (!remoteDir) r.problem('remote-dir', 'required with `sftp-host`: the directory of the published images');
  else if (!remoteDir.startsWith('/')) r.problem('remote-dir', `must be an absolute path; got ${quote(remoteDir)}`);
  if (!remoteName) {
    // An invalid `name` was reported already; the remote name it would have given is not a second problem.
    if (!nameGiven && template === undefined) r.problem('remote-name', 'required with `sftp-host` when `name` is not set');
  }
  else if (template !== undefined && fileNameProblem(nameWithTag(remoteName, 'TAG'))) r.problem('remote-name', fileNameProblem(nameWithTag(remoteName, 'TAG'))!);
  if (stagingDir && !stagingDir.startsWith('/')) r.problem('staging-dir', `must be an absolute path; got ${quote(stagingDir)}`);
  return {
    sftp: username && privateKey ? { host, port, username, privateKey, passphrase, knownHosts, fingerprint, ...(proxy && !('problem' in proxy) ? { proxy } : {}) } : undefined,
    stagingDir,
    remoteDir,
    remoteName,
  };
}

function readSmoke(r: Reader): SmokeConfig {
  const slurmArgsText = r.string('slurm-args') ?? '';
  const slurmArgs: string[] = [];
  const unterminated = unterminatedQuote(slurmArgsText);
  if (unterminated) r.problem('slurm-args', `has an unterminated ${unterminated} quote; got ${quote(slurmArgsText)}`);
  for (const token of unterminated ? [] : shellParse(slurmArgsText)) {
    if (typeof token === 'string') slurmArgs.push(token);
    else r.problem('slurm-args', `only plain arguments are accepted (no shell operators); got ${quote(slurmArgsText)}`);
  }
  const baseline = r.string('baseline');
  const mem = r.rawString('mem');
  if (mem !== undefined && !SLURM_MEM.test(mem)) r.problem('mem', `must be a Slurm memory size: a whole number with an optional K, M, G or T suffix, such as 64G; got ${JSON.stringify(mem)}`);
  for (const field of ['partition', 'account', 'qos'] as const) {
    const value = r.rawString(field);
    const pattern = field === 'partition' ? /^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$/ : /^[A-Za-z0-9_.-]+$/;
    if (value !== undefined && !pattern.test(value)) {
      r.problem(field, `must be a Slurm ${field} name: letters, digits, '_', '.', '-'${field === 'partition' ? " (several separated by ',')" : ''}, no spaces or newlines; got ${JSON.stringify(value)}`);
    }
  }
  const timeLimit = r.rawString('time-limit');
  if (timeLimit !== undefined && !SLURM_TIME.test(timeLimit)) {
    r.problem('time-limit', `must be a Slurm time: MM, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS, such as 00:15:00; got ${JSON.stringify(timeLimit)}`);
  }
  return {
    launcher: r.enum('launcher'),
    preset: r.enum('preset'),
    command: r.string('smoke-command'),
    partition: r.text('partition'),
    gpus: r.integer('gpus'),
    cpusPerTask: r.integer('cpus-per-task'),
    mem: mem !== undefined && SLURM_MEM.test(mem) ? mem : undefined,
    timeLimit: timeLimit !== undefined && SLURM_TIME.test(timeLimit) ? timeLimit : defaultOf('time-limit'),
    account: r.string('account'),
    qos: r.string('qos'),
    slurmArgs,
    timeoutMs: r.duration('smoke-timeout'),
    baseline,
    maxRegression: r.percent('max-regression'),
    nvccli: r.boolean('nvccli'),
    formats: readFormatList(r, 'smoke-formats'),
  };
}

function readChannels(r: Reader): 'auto' | number {
  const text = (r.string('sftp-channels') ?? 'auto').toLowerCase();
  if (text === 'auto') return 'auto';
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 16) return Number(text);
  r.problem('sftp-channels', `must be auto or a whole number from 1 to 16; got ${quote(text)}`);
  return 'auto';
}

function readPublish(r: Reader, remoteName: string | undefined, formats: ImageFormat[]): Omit<PublishConfig, 'channels'> {
  const alias = r.rawString('alias');
  if (alias !== undefined) {
    const problem = fileNameProblem(alias);
    if (problem) r.problem('alias', problem);
    else if (alias === remoteName) r.problem('alias', `must differ from remote-name (${quote(alias)}): the alias is a symlink beside the image`);
    else if (formats.includes('sqsh')) {
      // The .sqsh gets the alias with the extension .sqsh (src/formats.ts): it must not be the SIF's link or the .sqsh itself.
      if (/\.sqsh$/i.test(alias)) r.problem('alias', `must not end in .sqsh with formats: sif,sqsh: it names the SIF's link, and the .sqsh's is made from it (NAME.sif -> NAME.sqsh); got ${quote(alias)}`);
      else if (remoteName && sqshRemoteName(alias) === sqshRemoteName(remoteName)) r.problem('alias', `the .sqsh's alias ${quote(sqshRemoteName(alias))} would be the .sqsh's own name (from remote-name ${quote(remoteName)}): choose an alias with another stem`);
    }
  }
  const sha = r.string('staged-sha256')?.toLowerCase().replace(/^sha256:/, '');
  if (sha !== undefined && !/^[0-9a-f]{64}$/.test(sha)) r.problem('staged-sha256', `must be 64 hexadecimal digits (optionally prefixed "sha256:"); got ${quote(sha)}`);
  return {
    alias,
    stagedSha256: sha,
    keep: r.integer('keep'),
    verify: r.enum('verify'),
    lockStaleMs: r.duration('lock-stale'),
    lockTimeoutMs: r.duration('lock-timeout'),
  };
}

function readDocs(r: Reader): DocsConfig {
  const apiUrl = r.text('github-api-url').replace(/\/+$/, '');
  if (!isHttpUrl(apiUrl)) r.problem('github-api-url', `must be an http or https URL, such as https://github.example.com/api/v3; got ${quote(apiUrl)}`);
  return {
    token: r.raw('github-token'),
    apiUrl,
    repo: r.string('docs-repo'),
    file: r.string('docs-file'),
    base: r.string('docs-base'),
    software: r.string('software'),
    keyColumn: r.text('table-key-column'),
    valueColumn: r.text('table-value-column'),
    sqshColumn: r.string('table-sqsh-column'),
    branch: r.string('pr-branch'),
    title: r.string('pr-title'),
    labels: r.list('pr-labels'),
    reviewers: r.list('pr-reviewers'),
    draft: r.boolean('pr-draft'),
  };
}

/** `formats`: known names only; the SIF is always made, since the others are derived from it. */
function readFormats(r: Reader): ImageFormat[] {
  const given = readFormatList(r, 'formats') ?? [];
  return IMAGE_FORMATS.filter((f) => f === 'sif' || given.includes(f));
}

/** A list of image formats (`formats`, `smoke-formats`), in their canonical order; undefined when empty or wrong. */
function readFormatList(r: Reader, input: 'formats' | 'smoke-formats'): ImageFormat[] | undefined {
  const given = r.list(input);
  const unknown = given.filter((f) => !(IMAGE_FORMATS as readonly string[]).includes(f));
  if (unknown.length > 0) {
    r.problem(input, `unknown format${unknown.length > 1 ? 's' : ''} ${unknown.map(quote).join(', ')}: choose from ${IMAGE_FORMATS.join(', ')}`);
    return undefined;
  }
  const formats = IMAGE_FORMATS.filter((f) => given.includes(f));
  return formats.length > 0 ? formats : undefined;
}

/** Secret input values, to be masked before anything is logged. */
export function secretValues(read: InputReader, specs: readonly InputSpec[], env: NodeJS.ProcessEnv = process.env): string[] {
  return [
    ...specs
      .filter((s) => s.secret)
      .map((s) => read(s.name))
      .filter((v): v is string => v !== undefined && v !== ''),
    // A proxy URL is not secret, but the password in it is.
    ...urlSecrets(read('sftp-proxy')),
    ...proxySecrets(env),
  ];
}

