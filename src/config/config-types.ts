// The configuration's types: what each stage takes. Enum types are the schema's own values (src/config/schema.ts).
import type { EnumOf, StageName } from './schema.js';
import type { ImageFormat } from '../image/format-names.js';
import type { Source } from '../build/source.js';
import type { TagChoice, TagPattern } from '../build/tags.js';
import type { SftpTarget } from '../publish/connect.js';
import type { VerifyMode } from '../publish/remote-hash.js';
import type { SmokeOptions } from '../smoke/smoke.js';

export type Builder = EnumOf<'builder'>;
export type Fakeroot = EnumOf<'fakeroot'>;
export type Sudo = EnumOf<'sudo'>;
export type Compression = EnumOf<'compression'>;
/** `auto`: on under GitHub Actions, off on the command line. */
export type CacheSetting = EnumOf<'cache'>;

export interface BuildConfig {
  name?: string;
  builder: Builder;
  source?: Source;
  /** Follow the source repository's newest tag matching this pattern. */
  sourceTagPattern?: TagPattern;
  /** The tag already chosen by the pattern, when the run needed it before the build (a `{tag}` in `remote-name`). */
  chosenTag?: TagChoice;
  /** Absolute path of the directory for the builder's temporary files and cache (`tmp-dir`); chosen by free space when absent. */
  tmpDir?: string;
  /** Absolute path of the definition file. */
  definition?: string;
  buildArgs: Record<string, string>;
  /** Absolute path of the image to write (a SIF; a .sqsh with builder enroot). */
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
  /** `formats`: always has 'sif'; 'sqsh' derives an enroot image from it (src/image/sqsh.ts). */
  formats: ImageFormat[];
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
> & {
  /** `smoke-formats`: undefined means the default (see the input). */
  formats?: ImageFormat[];
};

export interface PublishConfig {
  alias?: string;
  /** What the staged file must hash to; the pipeline fills it from its own stage. */
  stagedSha256?: string;
  /** 0: retention off. */
  keep: number;
  verify: VerifyMode;
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
  /** `table-sqsh-column`: where the row gets the .sqsh path, when one is published. */
  sqshColumn?: string;
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
