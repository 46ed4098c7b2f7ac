// What every builder's run produces and how it is reported: the result, the expected failure, the SIF checks a
// build ends with, and the outputs and summary. Shared by the apptainer build (apptainer.ts) and the others
// (enroot.ts, u2cb.ts, through elsewhere.ts), so none of them imports the orchestration in build.ts.
import type { SifInfo } from '../image/sif.js';
import { readSifFile } from '../image/sif.js';
import type { Reporter } from '../report/reporter.js';
import { formatBytes, formatDuration, type Summary } from '../report/summary.js';
import { UserError } from '../user-error.js';
import type { BuilderInfo } from './builder.js';
import type { Finding } from './lint.js';
import { LABELS, type BuildContext } from './provenance.js';
import { describeChoice, type TagChoice } from './tags.js';

export interface BuildResult {
  image: string;
  sha256: string;
  size: number;
  sourceUri: string;
  sourceDigest?: string;
  /** The tag `source-tag-pattern` chose, and why. */
  sourceTag?: TagChoice;
  /** Where the builder's cache and temporary files went, the space estimated and the most used. */
  disk?: { root: string; free: number; needed: number; peak?: number };
  buildKey: string;
  builder: BuilderInfo;
  fakeroot: boolean;
  labels: Record<string, string>;
  findings: Finding[];
  durationSeconds: number;
  compression?: string;
  dryRun: boolean;
  /** The builder's command line (no secrets: credentials travel in the environment). */
  command: string[];
  /** Why nothing was built: the published image has this build key already (see BuildOptions.unchanged). */
  skipped?: string;
}

/** An expected failure: its message is shown to the user as is, without a stack trace. */
export class BuildError extends UserError {
  constructor(
    message: string,
    readonly findings: Finding[] = [],
  ) {
    super(message);
    this.name = 'BuildError';
  }
}

export interface BuildOptions {
  env?: NodeJS.ProcessEnv;
  context?: BuildContext;
  signal?: AbortSignal;
  cwd?: string;
  /** Compares the build key with the published image's before building; a reason means "skip". Absent: always build. */
  unchanged?: (buildKey: string) => Promise<string | undefined>;
}

export interface Plan {
  sourceUri: string;
  sourceDigests: string[];
  definitionSha256?: string;
  /** The recipe the builder runs. */
  recipe: string;
  labels: Record<string, string>;
  buildKey: string;
  /** Build arguments the recipe still uses: pinning a templated `From` consumes its arguments, and apptainer
   * refuses arguments a definition does not use. */
  buildArgs: Record<string, string>;
}

/** The SIF checks every build ends with: a primary partition for this host's architecture, this build's key among
 * its labels and, when the compression was asked for (not on the U2CB service), that compression. */
export async function verifySif(partial: string, builder: BuilderInfo, buildKey: string, reporter: Reporter, compression?: string): Promise<SifInfo> {
  const info = await readSifFile(partial).catch((error: Error) => {
    throw new BuildError(`${builder.command} produced no valid SIF: ${error.message}`);
  });
  const wantArch = hostSifArch();
  const problems: string[] = [];
  if (!info.primary) problems.push('no primary system partition');
  else if (wantArch && info.primary.arch !== wantArch) problems.push(`architecture ${info.primary.arch}, expected ${wantArch}`);
  if (info.labels[LABELS.buildKey] !== buildKey) problems.push('provenance labels missing from the image');
  if (compression && info.primary?.compression && info.primary.compression !== compression) {
    problems.push(`squashfs compression ${info.primary.compression}, expected ${compression}`);
  }
  if (problems.length > 0) throw new BuildError(`image verification failed: ${problems.join('; ')}`);
  reporter.info(`SIF ${info.header.version}, ${info.primary!.fsType} ${info.primary!.arch}, ${info.primary!.compression ?? 'unknown'} compression, ${Object.keys(info.labels).length} labels`);
  return info;
}

/** A built image's outputs and summary. */
export async function reportBuilt(result: BuildResult, reporter: Reporter): Promise<void> {
  reporter.setOutput('image', result.image);
  reporter.setOutput('sha256', result.sha256);
  reporter.setOutput('size', String(result.size));
  reporter.setOutput('source-digest', result.sourceDigest ?? '');
  reporter.setOutput('build-key', result.buildKey);
  reporter.setOutput('skipped', 'false');
  await reporter.summary(buildSummary(result));
}

function hostSifArch(): string | undefined {
  return ({ x64: 'amd64', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch];
}

export function buildSummary(result: BuildResult): Summary {
  if (result.skipped) {
    return {
      title: 'build-image: skipped, unchanged',
      facts: [
        { label: 'Skipped', value: result.skipped },
        { label: 'Source', value: result.sourceUri, code: true },
        { label: 'Source digest', value: result.sourceDigest ?? 'not resolvable for this source', code: !!result.sourceDigest },
        { label: 'Builder', value: `${result.builder.product} ${result.builder.version}` },
        { label: 'Build key', value: result.buildKey, code: true },
        { label: 'Duration', value: formatDuration(result.durationSeconds) },
      ],
    };
  }
  const facts: Summary['facts'] = [
    { label: 'Image', value: result.image, code: true },
    { label: 'Source', value: result.sourceUri, code: true },
    { label: 'Source digest', value: result.sourceDigest ?? 'not resolvable for this source', code: !!result.sourceDigest },
    ...(result.sourceTag ? [{ label: 'Source tag', value: describeChoice(result.sourceTag) }] : []),
    { label: 'Builder', value: `${result.builder.product} ${result.builder.version}${result.fakeroot ? ' (--fakeroot)' : ''}` },
    { label: 'Duration', value: formatDuration(result.durationSeconds) },
  ];
  if (!result.dryRun) {
    facts.push({ label: 'Size', value: formatBytes(result.size) });
    facts.push({ label: 'SHA-256', value: result.sha256, code: true });
    if (result.disk?.peak !== undefined) {
      facts.push({ label: 'Disk', value: `${formatBytes(result.disk.peak)} used at most on the file system of ${result.disk.root} (estimated ${formatBytes(result.disk.needed)}, ${formatBytes(result.disk.free)} free before)` });
    }
    if (result.compression) facts.push({ label: 'Compression', value: result.compression });
  } else if (result.disk) {
    facts.push({ label: 'Disk', value: `would use ${result.disk.root}: ${formatBytes(result.disk.needed)} needed, ${formatBytes(result.disk.free)} free` });
  }
  facts.push({ label: 'Build key', value: result.buildKey, code: true });
  const lintCount = result.findings.length;
  facts.push({ label: 'Lint', value: lintCount === 0 ? 'no findings' : `${lintCount} finding(s)` });
  return {
    title: result.dryRun ? 'build-image: build plan (dry run)' : 'build-image: build',
    facts,
    table:
      lintCount > 0
        ? {
            caption: 'Lint findings',
            header: ['Line', 'Severity', 'Rule', 'Message'],
            rows: result.findings.map((f) => [String(f.line), f.severity, f.rule, f.message]),
          }
        : undefined,
  };
}
