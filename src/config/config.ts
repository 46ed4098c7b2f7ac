// Turns raw input strings (from action inputs or CLI flags) into one typed, validated configuration. Every
// problem is collected and reported together, each naming its input and what is accepted.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as shellParse } from 'shell-quote';
import { inputSpec, type InputSpec, type StageName } from './schema.js';
import { isReservedLabel } from '../build/provenance.js';
import { parseSource, type Source } from '../build/source.js';
import { parseTagPattern, sourceTagProblem, type TagPattern } from '../build/tags.js';
import { keyInputLines } from '../build/key-inputs.js';
import { expandName, nameValues, type NameValues } from './naming.js';
import type { SftpTarget } from '../publish/connect.js';
import type { SmokeOptions } from '../smoke/smoke.js';
import { UserError } from '../user-error.js';

/** Reads one input's raw value; undefined or '' means "not given". */
export type InputReader = (name: string) => string | undefined;

export interface Problem {
  input: string;
  message: string;
}

export class ConfigError extends UserError {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => `${p.input}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export type Builder = 'auto' | 'apptainer' | 'singularity';
export type Fakeroot = 'auto' | 'true' | 'false';
export type Sudo = 'auto' | 'true' | 'false';
export type Compression = 'gzip' | 'xz' | 'zstd' | 'lz4';
/** `auto`: on under GitHub Actions, off on the command line. */
export type CacheSetting = 'auto' | 'true' | 'false';

export interface BuildConfig {
  name?: string;
  builder: Builder;
  source?: Source;
  /** Follow the source repository's newest tag matching this pattern. */
  sourceTagPattern?: TagPattern;
  /** Absolute path of the directory for the builder's temporary files and cache (`tmp-dir`); chosen by free space when absent. */
  tmpDir?: string;
  /** Absolute path of the definition file. */
  definition?: string;
  buildArgs: Record<string, string>;
  /** Absolute path of the SIF to write. */
  output: string;
  fakeroot: Fakeroot;
  /** Whether to build as root through passwordless sudo when the step is not root. */
  sudo: Sudo;
  registry?: { username: string; password: string };
  registryInsecure: boolean;
  labels: Record<string, string>;
  compression: Compression;
  /** The longest a build may take, in milliseconds. */
  timeoutMs: number;
  /** How long a pull may go without receiving data before the build is stopped, in milliseconds. */
  pullStallMs: number;
  /** The layer cache (src/build/cache.ts). */
  cache: CacheSetting;
  dryRun: boolean;
  /** Build even when the published image has the same build key. */
  force: boolean;
  /** `key-inputs` lines, evaluated when the build starts (src/build/key-inputs.ts). */
  keyInputs: string[];
}

/** The cluster account and host-key pin, exactly what the SFTP stage takes. */
export type SftpConfig = SftpTarget;

/** Where an image goes on the cluster: staged under `stagingDir`, promoted to `remoteDir/remoteName`. */
export interface RemoteConfig {
  sftp?: SftpConfig;
  stagingDir?: string;
  remoteDir?: string;
  remoteName?: string;
  /** Refuse to replace an existing file at `remoteDir/remoteName` (default on for tag-triggered runs). */
  immutable?: boolean;
}

/** The smoke inputs, typed as the smoke stage takes them. `baseline`: undefined means the published image when
 * this runner sees it, 'none' means no baseline. */
export type SmokeConfig = Pick<
  SmokeOptions,
  | 'launcher'
  | 'preset'
  | 'command'
  | 'partition'
  | 'gpus'
  | 'cpusPerTask'
  | 'mem'
  | 'timeLimit'
  | 'account'
  | 'qos'
  | 'slurmArgs'
  | 'timeoutMs'
  | 'baseline'
  | 'maxRegression'
  | 'nvccli'
>;

export interface PublishConfig {
  alias?: string;
  /** What the staged file must hash to; the pipeline fills it from its own stage. */
  stagedSha256?: string;
  /** 0: retention off. */
  keep: number;
  verify: 'sha256' | 'size';
  /** `sftp-channels`: `auto` or a fixed count of SFTP channels for the upload. */
  channels: 'auto' | number;
  lockStaleMs: number;
  lockTimeoutMs: number;
}

export interface DocsConfig {
  token?: string;
  apiUrl: string;
  repo?: string;
  file?: string;
  base?: string;
  software?: string;
  keyColumn: string;
  valueColumn: string;
  branch?: string;
  title?: string;
  labels: string[];
  reviewers: string[];
  draft: boolean;
}

export interface Config {
  stage: StageName;
  name?: string;
  dryRun: boolean;
  /** An existing image, for stages that did not build it. */
  image?: string;
  /** The build job skipped (input `skipped`): a separate smoke or publish step does nothing. */
  skipped: boolean;
  build: BuildConfig;
  remote: RemoteConfig;
  smoke: SmokeConfig;
  publish: PublishConfig;
  docs: DocsConfig;
}

/** Collects values and problems while reading inputs, so that all problems are reported at once. */
class Reader {
  readonly problems: Problem[] = [];
  constructor(private readonly read: InputReader) {}

  problem(input: string, message: string): void {
    this.problems.push({ input, message });
  }

  raw(name: string): string | undefined {
    const spec = inputSpec(name);
    const value = this.read(name);
    const given = value === undefined || value.trim() === '' ? undefined : value;
    return given ?? spec.default;
  }

  string(name: string): string | undefined {
    return this.raw(name)?.trim();
  }

  /** The value exactly as given (a name where a stray newline or space must be refused, not trimmed away). */
  rawString(name: string): string | undefined {
    const value = this.read(name);
    return value === undefined || value === '' ? undefined : value;
  }

  enum<T extends string>(name: string): T {
    const spec = inputSpec(name);
    const value = this.string(name) ?? '';
    const values = spec.kind.type === 'enum' ? spec.kind.values : [];
    if (!values.includes(value)) {
      this.problem(name, `must be one of ${values.join(', ')}; got ${quote(value)}`);
      return (spec.default ?? values[0]) as T;
    }
    return value as T;
  }

  boolean(name: string): boolean {
    const value = (this.string(name) ?? 'false').toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(value)) return true;
    if (['false', 'no', '0', 'off'].includes(value)) return false;
    this.problem(name, `must be true or false; got ${quote(value)}`);
    return false;
  }

  integer(name: string): number {
    const spec = inputSpec(name);
    const text = this.string(name) ?? '';
    const { min = -Infinity, max = Infinity } = spec.kind.type === 'integer' ? spec.kind : {};
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      this.problem(name, `must be a whole number from ${min} to ${max}; got ${quote(text)}`);
      return Number(spec.default ?? min);
    }
    return value;
  }

  /** `90s`, `20m`, `1h30m`, or plain seconds; returns milliseconds. */
  duration(name: string): number {
    const text = this.string(name) ?? '';
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) {
      this.problem(name, `must be a duration such as 90s, 20m or 1h30m; got ${quote(text)}`);
      return parseDuration(inputSpec(name).default ?? '0') ?? 0;
    }
    return ms;
  }

  /** `10%` or `0.1`, from 0 % to 99 % as the message says; returns a fraction. Empty is refused, not defaulted. */
  percent(name: string): number {
    const given = this.read(name);
    const text = given === undefined ? (inputSpec(name).default ?? '') : given.trim();
    const fallback = Number.parseFloat(inputSpec(name).default ?? '10') / 100;
    if (text === '') {
      this.problem(name, 'is empty: give a percentage from 0% to 99%, such as 10%');
      return fallback;
    }
    if (text.startsWith('-')) {
      this.problem(name, `cannot be negative (it is the largest slowdown allowed, from 0% to 99%); got ${quote(text)}`);
      return fallback;
    }
    const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
    const value = m ? Number(m[1]) / 100 : /^(0?\.\d+|0)$/.test(text) ? Number(text) : NaN;
    if (!(value >= 0 && value <= 0.99 + 1e-12)) {
      this.problem(name, `must be a percentage from 0% to 99%, such as 10%; got ${quote(text)}`);
      return fallback;
    }
    return value;
  }

  list(name: string): string[] {
    return (this.raw(name) ?? '')
      .split(/[\n,]/)
      .map((v) => v.trim())
      .filter(Boolean);
  }

  pairs(name: string): Record<string, string> {
    const { pairs, problems } = parsePairs(this.raw(name) ?? '');
    for (const message of problems) this.problem(name, message);
    return pairs;
  }
}

/** `KEY=VALUE` lines (build args, labels); blank lines and `#` comments are skipped. */
export function parsePairs(text: string): { pairs: Record<string, string>; problems: string[] } {
  const pairs: Record<string, string> = {};
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const eq = trimmed.indexOf('=');
    const key = eq > 0 ? trimmed.slice(0, eq).trim() : '';
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
      problems.push(`line ${index + 1}: expected KEY=VALUE with KEY of letters, digits, _ . -; got ${quote(trimmed)}`);
      return;
    }
    pairs[key] = trimmed.slice(eq + 1).trim();
  });
  return { pairs, problems };
}

function quote(value: string): string {
  const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return `'${shown}'`;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Why a value cannot name a file on the cluster, or undefined when it can. */
export function fileNameProblem(value: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(value)) return `must be a plain file name without newlines or control characters; got ${JSON.stringify(value)}`;
  if (value.includes('/')) return `must be a plain file name, without "/"; got ${quote(value)}`;
  if (value === '.' || value === '..' || value.startsWith('.')) return `must be a plain file name not starting with "."; got ${quote(value)}`;
  if (value.trim() !== value) return `must not start or end with a space; got ${quote(value)}`;
  return undefined;
}

function isHttpUrl(text: string): boolean {
  try {
    return /^https?:$/.test(new URL(text).protocol);
  } catch {
    return false;
  }
}

// Slurm's own grammar (sbatch(1): --mem, --time).
const SLURM_MEM = /^\d+[KMGT]?$/;
const SLURM_TIME = /^(?:\d+|\d+:\d{1,2}|\d+:\d{1,2}:\d{1,2}|\d+-\d{1,2}|\d+-\d{1,2}:\d{1,2}|\d+-\d{1,2}:\d{1,2}:\d{1,2}|UNLIMITED|unlimited|infinite)$/;

/** The kind of quote left open in a shell-like word list (shell-quote silently closes it), or undefined. */
export function unterminatedQuote(text: string): 'single' | 'double' | undefined {
  let open: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (open === "'") {
      if (c === "'") open = undefined;
    } else if (c === '\\') i++;
    else if (open === '"') {
      if (c === '"') open = undefined;
    } else if (c === "'" || c === '"') open = c;
  }
  return open === "'" ? 'single' : open === '"' ? 'double' : undefined;
}

export function parseDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '') return undefined;
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}

/** Which parts of the configuration a command or stage reads; the others keep their defaults unchecked. */
export type Part = 'build' | 'stage' | 'smoke' | 'publish' | 'docs';

const PARTS: Record<StageName, Part[]> = {
  build: ['build', 'stage'],
  smoke: ['smoke'],
  publish: ['publish', 'docs'],
  all: ['build', 'stage', 'smoke', 'publish', 'docs'],
};

export function loadConfig(
  read: InputReader,
  options: { cwd?: string; stage?: StageName; parts?: Part[]; env?: NodeJS.ProcessEnv; now?: Date } = {},
): Config {
  const cwd = options.cwd ?? process.cwd();
  const env = options.env ?? process.env;
  const r = new Reader(read);
  const stage = options.stage ?? r.enum<StageName>('stage');
  const parts = new Set(options.parts ?? PARTS[stage]);
  const nameText = r.rawString('name');
  const name = nameText !== undefined && NAME_PATTERN.test(nameText) ? nameText : undefined;
  if (nameText !== undefined && !name) {
    r.problem('name', `must be letters, digits, '.', '_' or '-' (starting with a letter or digit); got ${JSON.stringify(nameText)}`);
  }
  const dryRun = r.boolean('dry-run');
  const imageText = r.string('image');
  const image = imageText ? path.resolve(cwd, imageText) : undefined;

  const quiet = new Reader(read); // reads parts that this stage does not use, without reporting problems
  const build = readBuild(parts.has('build') ? r : quiet, cwd, name, dryRun, parts.has('build'));
  const sourceText = r.string('source');
  const definitionText = r.string('definition');
  const names = nameValues({
    name,
    source: sourceText,
    definition: definitionText ? path.resolve(cwd, definitionText) : undefined,
    buildArgs: build.buildArgs,
    env,
    now: options.now ?? new Date(),
  });
  const remote = readRemote(r, name, nameText !== undefined, {
    sftpRequired: parts.has('publish') || (parts.has('stage') && !parts.has('build')),
    check: parts.has('stage') || parts.has('publish'),
  }, names);
  // A release (a tag-triggered run) never overwrites a published name unless told to.
  const immutableText = r.string('immutable');
  const immutable = immutableText === undefined ? (env.GITHUB_REF ?? '').startsWith('refs/tags/') : r.boolean('immutable');
  const smoke = readSmoke(parts.has('smoke') ? r : quiet);
  const publish = { ...readPublish(parts.has('publish') ? r : quiet, remote.remoteName), channels: readChannels(parts.has('stage') ? r : quiet) };
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
  else if (template !== undefined && fileNameProblem(remoteName)) r.problem('remote-name', fileNameProblem(remoteName)!);
  if (stagingDir && !stagingDir.startsWith('/')) r.problem('staging-dir', `must be an absolute path; got ${quote(stagingDir)}`);
  return {
    sftp: username && privateKey ? { host, port, username, privateKey, passphrase, knownHosts, fingerprint } : undefined,
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
    partition: r.string('partition') ?? 'dgx2',
    gpus: r.integer('gpus'),
    cpusPerTask: r.integer('cpus-per-task'),
    mem: mem !== undefined && SLURM_MEM.test(mem) ? mem : undefined,
    timeLimit: timeLimit !== undefined && SLURM_TIME.test(timeLimit) ? timeLimit : '00:15:00',
    account: r.string('account'),
    qos: r.string('qos'),
    slurmArgs,
    timeoutMs: r.duration('smoke-timeout'),
    baseline,
    maxRegression: r.percent('max-regression'),
    nvccli: r.boolean('nvccli'),
  };
}

function readChannels(r: Reader): 'auto' | number {
  const text = (r.string('sftp-channels') ?? 'auto').toLowerCase();
  if (text === 'auto') return 'auto';
  if (/^\d+$/.test(text) && Number(text) >= 1 && Number(text) <= 16) return Number(text);
  r.problem('sftp-channels', `must be auto or a whole number from 1 to 16; got ${quote(text)}`);
  return 'auto';
}

function readPublish(r: Reader, remoteName: string | undefined): Omit<PublishConfig, 'channels'> {
  const alias = r.rawString('alias');
  if (alias !== undefined) {
    const problem = fileNameProblem(alias);
    if (problem) r.problem('alias', problem);
    else if (alias === remoteName) r.problem('alias', `must differ from remote-name (${quote(alias)}): the alias is a symlink beside the image`);
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
  const apiUrl = (r.string('github-api-url') ?? 'https://api.github.com').replace(/\/+$/, '');
  if (!isHttpUrl(apiUrl)) r.problem('github-api-url', `must be an http or https URL, such as https://github.example.com/api/v3; got ${quote(apiUrl)}`);
  return {
    token: r.raw('github-token'),
    apiUrl,
    repo: r.string('docs-repo'),
    file: r.string('docs-file'),
    base: r.string('docs-base'),
    software: r.string('software'),
    keyColumn: r.string('table-key-column') ?? '软件',
    valueColumn: r.string('table-value-column') ?? '位置',
    branch: r.string('pr-branch'),
    title: r.string('pr-title'),
    labels: r.list('pr-labels'),
    reviewers: r.list('pr-reviewers'),
    draft: r.boolean('pr-draft'),
  };
}

function readBuild(r: Reader, cwd: string, name: string | undefined, dryRun: boolean, check: boolean): BuildConfig {
  const builder = r.enum<Builder>('builder');
  const fakeroot = r.enum<Fakeroot>('fakeroot');
  const sudo = r.enum<Sudo>('sudo');
  const compression = r.enum<Compression>('compression');
  const registryInsecure = r.boolean('registry-insecure');
  const buildArgs = r.pairs('build-args');
  const labels = r.pairs('labels');
  for (const key of Object.keys(labels).filter(isReservedLabel)) {
    r.problem('labels', `${key} is provenance that build-image writes itself; it cannot be set by labels`);
  }

  const sourceText = r.string('source');
  const definitionText = r.string('definition');
  let source: Source | undefined;
  let definition: string | undefined;
  if (!check) {
    // Not building: nothing to validate about sources.
  } else if (sourceText && definitionText) {
    r.problem('source', 'give either `source` or `definition`, not both (a definition file names its own source in `From:`)');
  } else if (!sourceText && !definitionText) {
    r.problem('source', 'nothing to build: set `source` (docker://, oras://, docker-archive:, oci-archive: or a .sif) or `definition`');
  } else if (sourceText) {
    try {
      source = parseSource(sourceText, cwd);
    } catch (error) {
      r.problem('source', (error as Error).message);
    }
  } else if (definitionText) {
    definition = path.resolve(cwd, definitionText);
    if (!existsSync(definition)) r.problem('definition', `file not found: ${definitionText}`);
    else if (!statSync(definition).isFile()) r.problem('definition', `not a file: ${definitionText}`);
  }
  const sourceTagPattern = readTagPattern(r, source, definitionText, check);
  if (Object.keys(buildArgs).length > 0 && sourceText) {
    r.problem('build-args', 'build arguments only apply to a `definition` build');
  }

  const outputText = r.string('output') ?? `${name ?? 'image'}.sif`;
  const output = path.resolve(cwd, outputText);
  const outputDir = path.dirname(output);
  if (!check) {
    // Not building: the output path is not used.
  } else if (!existsSync(outputDir)) r.problem('output', `directory does not exist: ${outputDir}`);
  else if (!statSync(outputDir).isDirectory()) r.problem('output', `not a directory: ${outputDir}`);
  else if (existsSync(output) && statSync(output).isDirectory()) r.problem('output', `is a directory: ${outputText}`);

  const tmpDirText = r.string('tmp-dir');
  const tmpDir = tmpDirText === undefined ? undefined : path.resolve(cwd, tmpDirText);
  if (tmpDir && check && !existsSync(tmpDir)) r.problem('tmp-dir', `directory does not exist: ${tmpDirText}`);
  else if (tmpDir && check && !statSync(tmpDir).isDirectory()) r.problem('tmp-dir', `not a directory: ${tmpDirText}`);

  const username = r.string('registry-username');
  const password = r.raw('registry-password');
  let registry: BuildConfig['registry'];
  if (username && password) registry = { username, password };
  else if (username) r.problem('registry-password', 'required when `registry-username` is set');
  else if (password) r.problem('registry-username', 'required when `registry-password` is set');

  return {
    name,
    builder,
    source,
    sourceTagPattern,
    tmpDir,
    definition,
    buildArgs,
    output,
    fakeroot,
    sudo,
    registry,
    registryInsecure,
    labels,
    compression,
    timeoutMs: r.duration('build-timeout'),
    pullStallMs: r.duration('pull-stall-timeout'),
    cache: r.enum<CacheSetting>('cache'),
    dryRun,
    force: r.boolean('force'),
    keyInputs: keyInputLines(r.raw('key-inputs') ?? ''),
  };
}

/** `source-tag-pattern`: parsed, and only with a registry `source` it can follow. */
function readTagPattern(r: Reader, source: Source | undefined, definitionText: string | undefined, check: boolean): TagPattern | undefined {
  const text = r.string('source-tag-pattern');
  if (text === undefined || !check) return undefined;
  if (definitionText) {
    r.problem('source-tag-pattern', 'follows the tags of `source`; a definition names its base in `From:`');
    return undefined;
  }
  let pattern: TagPattern;
  try {
    pattern = parseTagPattern(text);
  } catch (error) {
    r.problem('source-tag-pattern', (error as Error).message);
    return undefined;
  }
  const problem = source && sourceTagProblem(source, pattern);
  if (problem) r.problem('source-tag-pattern', problem);
  return pattern;
}

/** Secret input values, to be masked before anything is logged. */
export function secretValues(read: InputReader, specs: readonly InputSpec[]): string[] {
  return specs
    .filter((s) => s.secret)
    .map((s) => read(s.name))
    .filter((v): v is string => v !== undefined && v !== '');
}
