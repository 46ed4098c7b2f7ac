// The one list of inputs and outputs. action.yml, the CLI's flags and --help, and the README's tables are all
// derived from it (scripts/gen-docs.mjs writes them; test/unit/schema.test.ts proves they agree), and so are the
// configuration's enum types and defaults (src/config/config-types.ts), from the data itself (`as const`).

/** What the tool does, in one sentence: action.yml, package.json and the CLI's help all say this. */
export const DESCRIPTION = 'Build Apptainer/Singularity and enroot images on CI, smoke-test them on Slurm GPUs, publish over SFTP and update the docs table.';

export type Phase = 'build' | 'stage' | 'smoke' | 'publish' | 'docs';

export type InputKind =
  | { type: 'string' }
  | { type: 'enum'; values: readonly string[] }
  | { type: 'boolean' }
  | { type: 'integer'; min?: number; max?: number }
  | { type: 'percent' }
  | { type: 'duration' }
  | { type: 'pairs'; separator: '=' } // one KEY=VALUE per line (or per repeated flag)
  | { type: 'list' }; // comma- or newline-separated

export interface InputSpec {
  name: string;
  description: string;
  phases: readonly Phase[];
  kind: InputKind;
  default?: string;
  /** Masked in logs and accepted as `--NAME-file PATH` on the command line. */
  secret?: boolean;
  /** Multi-line content (a key, a known_hosts file): also accepted as `--NAME-file PATH`. */
  multiline?: boolean;
  /** Singular flag that may be repeated on the command line (`--build-arg A=1 --build-arg B=2`). */
  repeatFlag?: string;
  /** Shown in help as the value placeholder. */
  placeholder?: string;
}

export interface OutputSpec {
  name: string;
  description: string;
  phase: Phase;
}

const str = { type: 'string' } as const;
const bool = { type: 'boolean' } as const;

export const STAGES = ['build', 'smoke', 'publish', 'all'] as const;
export type StageName = (typeof STAGES)[number];

/** The phases whose inputs each `stage` reads and checks; the inputs of other phases keep their defaults unchecked. */
export const STAGE_PHASES: Record<StageName, readonly Phase[]> = {
  build: ['build', 'stage'],
  smoke: ['smoke'],
  publish: ['publish', 'docs'],
  all: ['build', 'stage', 'smoke', 'publish', 'docs'],
};

const INPUT_LIST = [
  // ── what runs ──────────────────────────────────────────────────────────────────────────────────
  {
    name: 'stage',
    description:
      'Which part of the pipeline this step runs: `build` (build, then stage over SFTP when `sftp-host` is set), `smoke`, `publish` (promote and open the docs PR) or `all`.',
    phases: [],
    kind: { type: 'enum', values: STAGES },
    default: 'build',
  },
  {
    name: 'name',
    description:
      'Image family name, e.g. `pytorch`. Names the default output file, the remote file and the docs row; letters, digits, `.`, `_`, `-`.',
    phases: ['build', 'stage', 'smoke', 'publish', 'docs'],
    kind: str,
    placeholder: 'NAME',
  },
  {
    name: 'dry-run',
    description: 'Validate the inputs and print the plan (commands, labels, build key) without running anything.',
    phases: ['build', 'stage', 'smoke', 'publish', 'docs'],
    kind: bool,
    default: 'false',
  },
  // ── build ──────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'builder',
    description:
      '`auto` (apptainer, then singularity, whichever is installed), `apptainer` or `singularity` (SingularityCE 3.x/4.x); `enroot` builds an enroot `.sqsh` with `enroot import` (where enroot is installed: a GPU runner, or a root runner after provisioning); `u2cb` builds a SIF on the centre\'s U2CB build service through its `u2cb` client (runners without root). See the README\'s "Builders".',
    phases: ['build', 'smoke'],
    kind: { type: 'enum', values: ['auto', 'apptainer', 'singularity', 'enroot', 'u2cb'] },
    default: 'auto',
  },
  {
    name: 'source',
    description:
      'Image to build from: `docker://REF`, `oras://REF`, `docker-archive:PATH`, `oci-archive:PATH` or a local `.sif` path. Give either this or `definition`.',
    phases: ['build'],
    kind: str,
    placeholder: 'URI',
  },
  {
    name: 'source-tag-pattern',
    description:
      'Build the newest tag of the `source` repository that matches this pattern, e.g. `{yy}.{mm}-py3`: each `{name}` is a number (so `24.10-py3` is newer than `24.9-py3`), `*` any text; or a regular expression between slashes, ordered by its capture groups. `source` then names the repository; a tag written there must match the pattern and is replaced by the newest matching one.',
    phases: ['build'],
    kind: str,
    placeholder: 'PATTERN',
  },
  {
    name: 'definition',
    description: 'Path to an Apptainer/Singularity definition file. It is linted before the build starts.',
    phases: ['build'],
    kind: str,
    placeholder: 'FILE',
  },
  {
    name: 'build-args',
    description: 'Build arguments for `{{ NAME }}` placeholders in the definition file, one `KEY=VALUE` per line.',
    phases: ['build'],
    kind: { type: 'pairs', separator: '=' },
    multiline: true,
    repeatFlag: 'build-arg',
    placeholder: 'KEY=VALUE',
  },
  {
    name: 'output',
    description: 'Path of the image to write. Default: `NAME.sif` in the working directory (`image.sif` without `name`); with `builder: enroot`, `NAME.sqsh` (`image.sqsh`).',
    phases: ['build'],
    kind: str,
    placeholder: 'FILE',
  },
  {
    name: 'fakeroot',
    description:
      '`auto` uses `--fakeroot` when not root or when root lacks capabilities apptainer needs (CAP_SYS_RESOURCE); `true` always; `false` never.',
    phases: ['build'],
    kind: { type: 'enum', values: ['auto', 'true', 'false'] },
    default: 'auto',
  },
  {
    name: 'sudo',
    description:
      '`auto` builds as root through passwordless sudo when the step is not root and `sudo -n true` works (hosted runners), with only the variables the builder needs kept, and hands the image back to the step\'s user; otherwise it builds as the step\'s user (`fakeroot` applies). `true` requires sudo; `false` never uses it.',
    phases: ['build'],
    kind: { type: 'enum', values: ['auto', 'true', 'false'] },
    default: 'auto',
  },
  {
    name: 'registry-username',
    description: 'Username for a private registry or NGC (`$oauthtoken`). Given to the builder through its environment.',
    phases: ['build'],
    kind: str,
    placeholder: 'USER',
  },
  {
    name: 'registry-password',
    description: 'Password or token for the registry. Masked; given to the builder through its environment, never its command line.',
    phases: ['build'],
    kind: str,
    secret: true,
    placeholder: 'TOKEN',
  },
  {
    name: 'registry-insecure',
    description: 'Talk plain HTTP to the source registry (a registry on loopback or a lab network).',
    phases: ['build'],
    kind: bool,
    default: 'false',
  },
  {
    name: 'labels',
    description: 'Extra labels for the image, one `KEY=VALUE` per line. Provenance labels are always added.',
    phases: ['build'],
    kind: { type: 'pairs', separator: '=' },
    multiline: true,
    repeatFlag: 'label',
    placeholder: 'KEY=VALUE',
  },
  {
    name: 'compression',
    description:
      'Squashfs compression of the image. `gzip` runs on every Singularity and Apptainer runtime and kernel; `xz` and `zstd` are smaller but not universally readable.',
    phases: ['build'],
    kind: { type: 'enum', values: ['gzip', 'xz', 'zstd', 'lz4'] },
    default: 'gzip',
  },
  {
    name: 'formats',
    description:
      'Image formats to make, comma-separated: `sif`, and `sqsh` for an enroot image made from the same build (`NAME.sqsh` beside the SIF: the SIF\'s squashfs root with the image\'s runtime environment in `/etc/environment` and its working directory and runscript in `/etc/rc`, packed with enroot\'s squashfs options) for `enroot create` and `srun --container-image`. The SIF is always built: the `.sqsh` is derived from it. Stage and publish move the `.sqsh` beside the SIF (the same staging, locking and atomic rename, `remote-name` with the extension `.sqsh`, and an `alias` twin with the extension `.sqsh`); retention keeps or deletes a version\'s SIF and `.sqsh` together; give separate stage and publish jobs the same `formats`.',
    phases: ['build', 'stage', 'smoke', 'publish', 'docs'],
    kind: { type: 'list' },
    default: 'sif',
    placeholder: 'LIST',
  },
  {
    name: 'build-timeout',
    description: 'The longest a build may take, pulls included; past it the builder and all its children are stopped and nothing is left at `output`.',
    phases: ['build'],
    kind: { type: 'duration' },
    default: '6h',
  },
  {
    name: 'pull-stall-timeout',
    description: 'How long pulling the source may go without receiving data (no output, no bytes in the download directories) before the build is stopped with a message naming the source and registry.',
    phases: ['build'],
    kind: { type: 'duration' },
    default: '5m',
  },
  {
    name: 'tmp-dir',
    description:
      'Directory for the builder\'s temporary sandbox and layer cache (`APPTAINER_TMPDIR`, `APPTAINER_CACHEDIR`). Default: of `RUNNER_TEMP`, the system temporary directory and `/mnt`, the one on the file system with the most free space. The build fails before pulling when the space it needs (estimated from the layer sizes) is not free there.',
    phases: ['build'],
    kind: str,
    placeholder: 'DIR',
  },
  {
    name: 'cache',
    description:
      "Layer cache: restore the builder's downloaded layers (its OCI blob cache) before the build and save them after it with the Actions cache, keyed by builder, runner OS and source digests, so a fresh runner downloads only layers it has not seen. `auto` is on under GitHub Actions and off on the command line, `true` is on anywhere the cache service is, `false` is off. Where the runner has no cache service (GitHub Enterprise Server without it) the build says so once and goes on; a cache error never fails a build.",
    phases: ['build'],
    kind: { type: 'enum', values: ['auto', 'true', 'false'] },
    default: 'auto',
  },
  {
    name: 'force',
    description:
      'Build even when the image published at `remote-dir/remote-name` already has this build key. Without it, an unchanged build is skipped: nothing is built, uploaded, smoke-tested or published, and `skipped` is `true`. `immutable` still refuses an existing name.',
    phases: ['build'],
    kind: bool,
    default: 'false',
  },
  {
    name: 'key-inputs',
    description:
      'More inputs of the build key, one a line, for what `%post` downloads (a nightly wheel, a git branch): a line starting with `$ ` is a command run on the runner with `/bin/sh -c`, whose standard output joins the key (e.g. `$ git ls-remote https://github.com/org/repo refs/heads/main`); any other line joins it as written. A failing command, or one that prints nothing, stops the build.',
    phases: ['build'],
    kind: str,
    multiline: true,
    placeholder: 'LINES',
  },
  {
    name: 'skipped',
    description:
      'The build job\'s `skipped` output, for `smoke` and `publish` run as separate jobs: `true` makes the step do nothing and succeed (the published image is already current).',
    phases: ['smoke', 'publish'],
    kind: bool,
    default: 'false',
  },
  // ── stage (SFTP) ───────────────────────────────────────────────────────────────────────────────
  {
    name: 'image',
    description: 'Image file to stage, smoke-test or publish when this step did not build it.',
    phases: ['stage', 'smoke', 'publish'],
    kind: str,
    placeholder: 'FILE',
  },
  {
    name: 'sftp-host',
    description: 'Cluster login or data-transfer host to upload to. Setting it makes `stage: build` upload after building.',
    phases: ['stage', 'publish'],
    kind: str,
    placeholder: 'HOST',
  },
  {
    name: 'sftp-port',
    description: 'SSH port of `sftp-host`.',
    phases: ['stage', 'publish'],
    kind: { type: 'integer', min: 1, max: 65535 },
    default: '22',
  },
  {
    name: 'sftp-username',
    description: 'Account on `sftp-host`.',
    phases: ['stage', 'publish'],
    kind: str,
    placeholder: 'USER',
  },
  {
    name: 'sftp-private-key',
    description: 'Private key (OpenSSH or PEM text). Masked and kept in memory.',
    phases: ['stage', 'publish'],
    kind: str,
    secret: true,
    multiline: true,
    placeholder: 'KEY',
  },
  {
    name: 'sftp-passphrase',
    description: 'Passphrase of `sftp-private-key`. Masked.',
    phases: ['stage', 'publish'],
    kind: str,
    secret: true,
    placeholder: 'PASSPHRASE',
  },
  {
    name: 'sftp-known-hosts',
    description:
      'OpenSSH known_hosts lines for `sftp-host` (hashed entries and `[host]:port` accepted). One of this or `sftp-host-fingerprint` is required: there is no trust on first use.',
    phases: ['stage', 'publish'],
    kind: str,
    multiline: true,
    placeholder: 'LINES',
  },
  {
    name: 'sftp-host-fingerprint',
    description: 'Host key fingerprint as `ssh-keygen -l` prints it (`SHA256:...`).',
    phases: ['stage', 'publish'],
    kind: str,
    placeholder: 'SHA256:...',
  },
  {
    name: 'sftp-proxy',
    description:
      'Proxy for the SSH connection to `sftp-host`: `http://[USER:PASSWORD@]HOST:PORT` (HTTP CONNECT) or `socks5://[USER:PASSWORD@]HOST:PORT`. The password is masked. HTTP requests (GitHub, registries) follow `HTTPS_PROXY`, `HTTP_PROXY` and `NO_PROXY` instead.',
    phases: ['stage', 'publish'],
    kind: str,
    placeholder: 'URL',
  },
  {
    name: 'staging-dir',
    description: 'Remote directory for uploads in progress; images are promoted from here by an atomic rename.',
    phases: ['stage', 'smoke', 'publish'],
    kind: str,
    placeholder: 'DIR',
  },
  {
    name: 'remote-dir',
    description: 'Remote directory of the published images, e.g. `/lustre/share/img`.',
    phases: ['stage', 'smoke', 'publish', 'docs'],
    kind: str,
    placeholder: 'DIR',
  },
  {
    name: 'remote-name',
    description:
      'File name of the published image. Default: `NAME.sif`. A template may use `{name}`, `{tag}` (the source\'s tag, or the tag of the definition\'s last `From:`), `{date}` (UTC, `YYYYMMDD`), `{git-tag}` (the tag that triggered the run) and `{short-sha}` (the commit, 7 digits), e.g. `pytorch-{tag}.sif`; a placeholder with no value in the run is an error.',
    phases: ['stage', 'smoke', 'publish', 'docs'],
    kind: str,
    placeholder: 'FILE',
  },
  {
    name: 'immutable',
    description:
      'Refuse to replace a file that already exists at `remote-dir/remote-name`, before anything is built or uploaded (an unchanged build is still skipped). Default: `true` for tag-triggered runs (`GITHUB_REF` is `refs/tags/...`), `false` otherwise.',
    phases: ['stage', 'publish'],
    kind: bool,
  },
  // ── smoke ──────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'launcher',
    description:
      '`direct` (on this runner: `apptainer exec` for a SIF, `enroot create` + `enroot start` for a `.sqsh`, removed afterwards), `srun` or `sbatch` (Slurm, SIF images), or `pyxis` (`srun --container-image=IMAGE.sqsh` with `--container-mounts` and `--container-env`; with `formats: sif,sqsh` the build\'s `.sqsh` is tested, and a SIF baseline runs with srun and apptainer).',
    phases: ['smoke'],
    kind: { type: 'enum', values: ['direct', 'srun', 'sbatch', 'pyxis'] },
    default: 'direct',
  },
  {
    name: 'smoke-formats',
    description:
      'Which formats to smoke-test, comma-separated: `sif`, `sqsh` (the `.sqsh` beside the SIF) or `sif,sqsh`, which runs the same payload in both with the launcher (`direct`: apptainer and enroot; `pyxis`: srun with apptainer and `srun --container-image`) and adds a table of both side by side to the summary; each run has its own baseline gate (a format that fails it does not stop the next, and the run fails after the last), and `smoke-json` carries every format\'s figures. Default: `sqsh` with `launcher: pyxis` and `formats: sif,sqsh`, else `sif`.',
    phases: ['smoke'],
    kind: { type: 'list' },
    placeholder: 'LIST',
  },
  {
    name: 'preset',
    description: 'Built-in smoke payload: `pytorch` (versions, GPUs, GEMM TFLOP/s, host-device bandwidth) or `none`.',
    phases: ['smoke'],
    kind: { type: 'enum', values: ['pytorch', 'none'] },
    default: 'pytorch',
  },
  {
    name: 'smoke-command',
    description: 'Command to run inside the image instead of (or, with a preset, after) the preset payload.',
    phases: ['smoke'],
    kind: str,
    placeholder: 'COMMAND',
  },
  {
    name: 'partition',
    description: 'Slurm partition for `srun`/`sbatch`.',
    phases: ['smoke'],
    kind: str,
    default: 'dgx2',
  },
  {
    name: 'gpus',
    description: 'GPUs to request (`--gres=gpu:N`); 0 runs without `--nv`.',
    phases: ['smoke'],
    kind: { type: 'integer', min: 0, max: 64 },
    default: '1',
  },
  {
    name: 'cpus-per-task',
    description: 'CPUs per task for Slurm.',
    phases: ['smoke'],
    kind: { type: 'integer', min: 1, max: 1024 },
    default: '6',
  },
  {
    name: 'mem',
    description: 'Memory for Slurm (`--mem`), e.g. `32G`. Empty: the partition default.',
    phases: ['smoke'],
    kind: str,
    placeholder: 'SIZE',
  },
  {
    name: 'time-limit',
    description: 'Slurm time limit (`--time`).',
    phases: ['smoke'],
    kind: str,
    default: '00:15:00',
  },
  {
    name: 'account',
    description: 'Slurm account (`--account`).',
    phases: ['smoke'],
    kind: str,
    placeholder: 'ACCOUNT',
  },
  {
    name: 'qos',
    description: 'Slurm QOS (`--qos`).',
    phases: ['smoke'],
    kind: str,
    placeholder: 'QOS',
  },
  {
    name: 'slurm-args',
    description: 'Extra arguments for `srun`/`sbatch`, shell-quoted.',
    phases: ['smoke'],
    kind: str,
    placeholder: 'ARGS',
  },
  {
    name: 'smoke-timeout',
    description: 'Longest the smoke test may take, queueing included (`90s`, `20m`, `1h`); the job is cancelled after it.',
    phases: ['smoke'],
    kind: { type: 'duration' },
    default: '30m',
  },
  {
    name: 'baseline',
    description: 'Image to compare against. Default: the image currently published at the target path; `none` to skip.',
    phases: ['smoke'],
    kind: str,
    placeholder: 'PATH',
  },
  {
    name: 'max-regression',
    description: 'Largest slowdown against the baseline on GEMM and transfer figures before the run fails, e.g. `10%`.',
    phases: ['smoke'],
    kind: { type: 'percent' },
    default: '10%',
  },
  {
    name: 'nvccli',
    description: 'Use `--nvccli` (nvidia-container-cli) instead of `--nv` to set up GPUs.',
    phases: ['smoke'],
    kind: bool,
    default: 'false',
  },
  // ── publish ────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'alias',
    description:
      'Symlink in `remote-dir` swapped atomically to the new image, e.g. `pytorch-latest.sif`. With `formats: sif,sqsh` the `.sqsh` gets its own alias, this name with the extension `.sqsh` (`pytorch-latest.sqsh`; a name without `.sif` gets `.sqsh` appended), swapped the same way; the alias must then not end in `.sqsh`.',
    phases: ['publish'],
    kind: str,
    placeholder: 'NAME',
  },
  {
    name: 'staged-sha256',
    description:
      'The sha256 the staged image must have (the stage\'s `sha256` output) when `publish` runs as its own step; promotion refuses a staged file another run replaced meanwhile. The `all` stage checks this by itself.',
    phases: ['publish'],
    kind: str,
    placeholder: 'HEX',
  },
  {
    name: 'keep',
    description:
      'How many versions of the image family to keep in `remote-dir`; `0` turns retention off. Only files this tool published (recorded in its manifest `remote-dir/.build-image.json`, or carrying its build-key label) are ever deleted, never a file the docs table lists.',
    phases: ['publish'],
    kind: { type: 'integer', min: 0, max: 1000 },
    default: '3',
  },
  {
    name: 'verify',
    description:
      'How the server checks an image before it goes live: `sha256` (the server hashes it; a run fails where the account cannot run commands) or `size` (accept a size check on accounts limited to SFTP).',
    phases: ['stage', 'publish'],
    kind: { type: 'enum', values: ['sha256', 'size'] },
    default: 'sha256',
  },
  {
    name: 'sftp-channels',
    description:
      'SFTP channels the upload is written over, sharing its pieces in file order: `auto` measures the round trip when connecting and uses one channel on loopback and LAN, more on long links (where one channel is limited by its 2 MiB window per round trip); or a number from 1 to 16. Where the server allows fewer sessions per connection (`MaxSessions`), further connections carry the rest, and the log says so.',
    phases: ['stage'],
    kind: str,
    default: 'auto',
    placeholder: 'auto|N',
  },
  {
    name: 'lock-stale',
    description: 'A publisher refreshes its remote lock while it works; a lock not refreshed for this long belongs to a run that died and is taken over.',
    phases: ['stage', 'publish'],
    kind: { type: 'duration' },
    default: '2m',
  },
  {
    name: 'lock-timeout',
    description: 'The longest to wait for another publisher of the same image that is still working (its lock is being refreshed).',
    phases: ['stage', 'publish'],
    kind: { type: 'duration' },
    default: '30m',
  },
  // ── docs ───────────────────────────────────────────────────────────────────────────────────────
  {
    name: 'github-token',
    description: 'Token with write access to `docs-repo` (a separate repository: the workflow\'s own GITHUB_TOKEN cannot reach it). Masked.',
    phases: ['docs'],
    kind: str,
    secret: true,
    placeholder: 'TOKEN',
  },
  {
    name: 'github-api-url',
    description: 'REST API root, for GitHub Enterprise.',
    phases: ['docs'],
    kind: str,
    default: 'https://api.github.com',
  },
  {
    name: 'docs-repo',
    description: 'Documentation repository, `OWNER/REPO`. Empty: no docs PR.',
    phases: ['docs'],
    kind: str,
    placeholder: 'OWNER/REPO',
  },
  {
    name: 'docs-file',
    description: 'File holding the preset image table (RST simple or grid table, or Markdown).',
    phases: ['docs'],
    kind: str,
    placeholder: 'PATH',
  },
  {
    name: 'docs-base',
    description: 'Base branch of the docs PR. Default: the repository\'s default branch.',
    phases: ['docs'],
    kind: str,
    placeholder: 'BRANCH',
  },
  {
    name: 'software',
    description: 'Row key in the table (e.g. `PyTorch`). Default: `name`.',
    phases: ['docs'],
    kind: str,
    placeholder: 'NAME',
  },
  {
    name: 'table-key-column',
    description: 'Header of the key column.',
    phases: ['docs'],
    kind: str,
    default: '软件',
  },
  {
    name: 'table-value-column',
    description: 'Header of the location column.',
    phases: ['docs'],
    kind: str,
    default: '位置',
  },
  {
    name: 'table-sqsh-column',
    description: 'Header of a column for the enroot image\'s location (`formats: sif,sqsh`), e.g. `enroot`: the row\'s cell there gets the published `.sqsh` path. Without it the `.sqsh` path is only in the pull request\'s description.',
    phases: ['docs'],
    kind: str,
    placeholder: 'HEADER',
  },
  {
    name: 'pr-branch',
    description: 'Branch of the docs PR. Default: `build-image/NAME`.',
    phases: ['docs'],
    kind: str,
    placeholder: 'BRANCH',
  },
  {
    name: 'pr-title',
    description: 'Title of the docs PR. Default: `Update SOFTWARE image to REMOTE-NAME`.',
    phases: ['docs'],
    kind: str,
    placeholder: 'TITLE',
  },
  {
    name: 'pr-labels',
    description: 'Labels for the docs PR, comma-separated.',
    phases: ['docs'],
    kind: { type: 'list' },
    placeholder: 'LIST',
  },
  {
    name: 'pr-reviewers',
    description: 'Reviewers for the docs PR, comma-separated logins.',
    phases: ['docs'],
    kind: { type: 'list' },
    placeholder: 'LIST',
  },
  {
    name: 'pr-draft',
    description: 'Open the docs PR as a draft.',
    phases: ['docs'],
    kind: bool,
    default: 'false',
  },
] as const satisfies readonly InputSpec[];

export const INPUTS: readonly InputSpec[] = INPUT_LIST;

type InputOf = (typeof INPUT_LIST)[number];
export type InputName = InputOf['name'];
/** Inputs that have a default: reading one never gives `undefined`. */
export type InputWithDefault = Extract<InputOf, { default: string }>['name'];
/** The values of an enum input, as a union type (`EnumOf<'builder'>` is `'auto' | 'apptainer' | 'singularity'`). */
export type EnumOf<N extends InputName> = Extract<InputOf, { name: N }>['kind'] extends { values: readonly (infer V)[] } ? V : never;

/** The schema default of an input that has one. */
export function defaultOf(name: InputWithDefault): string {
  return inputSpec(name).default!;
}

export const OUTPUTS: readonly OutputSpec[] = [
  { name: 'image', phase: 'build', description: 'Absolute path of the built image.' },
  { name: 'sha256', phase: 'build', description: 'SHA-256 of the image file.' },
  { name: 'size', phase: 'build', description: 'Size of the image file in bytes.' },
  { name: 'sqsh', phase: 'build', description: 'Absolute path of the enroot image (`.sqsh`) when `formats` has `sqsh`; empty otherwise.' },
  { name: 'sqsh-sha256', phase: 'build', description: 'SHA-256 of the `.sqsh` file.' },
  { name: 'sqsh-size', phase: 'build', description: 'Size of the `.sqsh` file in bytes.' },
  { name: 'source-tag', phase: 'build', description: 'The tag `source-tag-pattern` chose (empty without a pattern).' },
  { name: 'source-digest', phase: 'build', description: 'Resolved digest of the source (registry manifest or file sha256).' },
  { name: 'build-key', phase: 'build', description: 'Hash of everything that determines the image; equal keys mean an equal build.' },
  { name: 'skipped', phase: 'build', description: '`true` when the published image already has this build key: nothing was built, uploaded, smoke-tested or published.' },
  { name: 'skip-reason', phase: 'build', description: 'Why the build was skipped (which published image has the same build key); empty when it was not.' },
  { name: 'remote-name', phase: 'stage', description: 'The file name the image is published under, `remote-name` with its placeholders filled in; give it to a separate publish job.' },
  { name: 'staged-path', phase: 'stage', description: 'Remote path of the staged upload.' },
  { name: 'sqsh-staged-path', phase: 'stage', description: 'Remote path of the staged `.sqsh` (with `formats: sif,sqsh`).' },
  { name: 'bytes-sent', phase: 'stage', description: 'Bytes sent over SFTP (less than the size after a resume, 0 when skipped).' },
  { name: 'upload-skipped', phase: 'stage', description: '`true` when the remote already had a file with the same sha256.' },
  { name: 'smoke-json', phase: 'smoke', description: 'Smoke test and benchmark results as JSON (new image, baseline, ratios). When `smoke-formats` ran more than one format, the object is the first format\'s, with `passed` true only when every format passed and `formats` holding each format\'s own object by name (`{"sif": {...}, "sqsh": {...}}`).' },
  { name: 'remote-path', phase: 'publish', description: 'Live remote path of the published image.' },
  { name: 'sqsh-remote-path', phase: 'publish', description: 'Live remote path of the published `.sqsh` (with `formats: sif,sqsh`), `remote-name` with `.sqsh` for its extension.' },
  { name: 'publish-operation', phase: 'publish', description: '`promoted`, or `already-promoted` when a re-run found the image live already (it then finished the alias and retention).' },
  { name: 'deleted', phase: 'publish', description: 'Remote files removed by retention, newline-separated.' },
  { name: 'provenance', phase: 'publish', description: 'Path of the run\'s provenance record, `NAME.provenance.json` beside the image (JSON: git revision, source and digest, image sha256, builder and versions, smoke figures, remote path, PR URL). It is staged beside the staged image and placed beside the live one at promotion, so a separate publish job carries the same evidence (its copy is written to `RUNNER_TEMP`, or the working directory off Actions).' },
  { name: 'pr-url', phase: 'docs', description: 'URL of the docs pull request.' },
  { name: 'pr-number', phase: 'docs', description: 'Number of the docs pull request.' },
  { name: 'pr-operation', phase: 'docs', description: '`created`, `updated` or `unchanged`.' },
];

export function inputSpec(name: string): InputSpec {
  const spec = INPUTS.find((i) => i.name === name);
  if (!spec) throw new Error(`no input named ${name}`);
  return spec;
}

/** Inputs a phase reads; `dry-run` and `name` are shared by all. */
export function inputsFor(phase: Phase): InputSpec[] {
  return INPUTS.filter((i) => i.phases.includes(phase));
}

/** CLI commands and the phases whose inputs they take. */
export interface CommandSpec {
  name: string;
  summary: string;
  phases: readonly Phase[];
  positional?: { name: string; description: string };
  /** Flags of this command alone, not action inputs. */
  flags?: readonly { name: string; description: string; boolean?: boolean; placeholder?: string; required?: boolean }[];
  /** Action inputs it takes besides those of its phases. */
  inputs?: readonly string[];
  available: boolean;
}

export const COMMANDS: readonly CommandSpec[] = [
  { name: 'build', summary: 'Lint, build and verify a SIF with provenance labels.', phases: ['build'], available: true },
  {
    name: 'lint',
    summary: 'Lint a definition file without building.',
    phases: [],
    positional: { name: 'FILE', description: 'definition file' },
    available: true,
  },
  {
    name: 'inspect',
    summary: "Print a SIF's header, partitions, labels and definition as JSON.",
    phases: [],
    positional: { name: 'FILE', description: 'SIF image' },
    available: true,
  },
  { name: 'stage', summary: 'Upload an image to the staging directory over SFTP.', phases: ['stage'], available: true },
  { name: 'smoke', summary: 'Smoke-test and benchmark an image on the GPU partition.', phases: ['smoke'], available: true },
  { name: 'publish', summary: 'Promote a staged image and open the docs PR.', phases: ['publish', 'docs'], available: true },
  { name: 'all', summary: 'Build, stage, smoke-test and publish.', phases: ['build', 'stage', 'smoke', 'publish', 'docs'], available: true },
  {
    name: 'table',
    summary: "Edit a local docs file's preset image table (for people who keep a docs checkout).",
    phases: [],
    inputs: ['table-key-column', 'table-value-column'],
    flags: [
      { name: 'file', description: 'The docs file (RST, or Markdown by its extension).', placeholder: 'FILE', required: true },
      { name: 'key', description: 'Row key, e.g. PyTorch (matched case-insensitively).', placeholder: 'NAME', required: true },
      { name: 'value', description: 'New location, e.g. /lustre/share/img/pytorch-24.10.sif.', placeholder: 'PATH', required: true },
      { name: 'check', description: 'Print the diff and change nothing; exit 1 when the file would change.', boolean: true },
    ],
    available: true,
  },
];
