// Provenance: the labels written into every image and the build key that says whether two builds are the
// same. Pure functions over the facts the build stage gathered.
import { createHash } from 'node:crypto';
import { LABELS } from './labels.js';

export { LABEL_PREFIX, LABELS, isReservedLabel, labelLines } from './labels.js';

/** Where the build runs: the repository and run it belongs to, when known. */
export interface BuildContext {
  repositoryUrl?: string;
  revision?: string;
  runUrl?: string;
  created: Date;
}

/** GitHub Actions' environment names the repository, commit and run. */
export function contextFromEnv(env: NodeJS.ProcessEnv, created = new Date()): BuildContext {
  const server = env.GITHUB_SERVER_URL ?? 'https://github.com';
  const repo = env.GITHUB_REPOSITORY;
  const runUrl =
    repo && env.GITHUB_RUN_ID
      ? `${server}/${repo}/actions/runs/${env.GITHUB_RUN_ID}${env.GITHUB_RUN_ATTEMPT ? `/attempts/${env.GITHUB_RUN_ATTEMPT}` : ''}`
      : undefined;
  return {
    repositoryUrl: repo ? `${server}/${repo}` : undefined,
    revision: env.GITHUB_SHA,
    runUrl,
    created,
  };
}

/** Everything that determines the image's content; equal inputs give an equal key. */
export interface KeyInputs {
  sourceUri: string;
  /** Content digests of every base the build pulls (the source, or each stage's `From`). */
  sourceDigests: string[];
  definitionSha256?: string;
  buildArgs: Record<string, string>;
  labels: Record<string, string>;
  /** Product and full version, for the label; the key takes the product and major version only. */
  builder: string;
  compression: string;
  fakeroot: boolean;
  /** This tool's version: a new release may build the same inputs differently. */
  actionVersion: string;
  /** Digest over the host files `%files` and `%setup` bring in (see key-files.ts). */
  hostFiles?: string;
  /** What `key-inputs` gave, in order (see key-inputs.ts). */
  keyInputs: string[];
}

/** `apptainer 1.4.5` → `apptainer 1`: a patch or minor release of the builder does not change the key. */
export function builderMajor(builder: string): string {
  const m = /^(\S+) v?(\d+)/.exec(builder);
  return m ? `${m[1]} ${m[2]}` : builder;
}

export function buildKey(inputs: KeyInputs): string {
  const canonical = JSON.stringify({
    v: 2,
    sourceUri: inputs.sourceUri,
    sourceDigests: inputs.sourceDigests,
    definitionSha256: inputs.definitionSha256 ?? null,
    buildArgs: sortedEntries(inputs.buildArgs),
    labels: sortedEntries(inputs.labels),
    builder: builderMajor(inputs.builder),
    compression: inputs.compression,
    fakeroot: inputs.fakeroot,
    actionVersion: inputs.actionVersion,
    hostFiles: inputs.hostFiles ?? null,
    keyInputs: inputs.keyInputs,
  });
  return `sha256:${createHash('sha256').update(canonical).digest('hex')}`;
}

function sortedEntries(record: Record<string, string>): [string, string][] {
  return Object.entries(record).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function provenanceLabels(args: {
  context: BuildContext;
  key: KeyInputs;
  buildKey: string;
}): Record<string, string> {
  const { context, key } = args;
  const labels: Record<string, string> = {};
  if (context.repositoryUrl) labels[LABELS.source] = context.repositoryUrl;
  if (context.revision) labels[LABELS.revision] = context.revision;
  labels[LABELS.created] = context.created.toISOString();
  labels[LABELS.sourceUri] = key.sourceUri;
  if (key.sourceDigests.length > 0) labels[LABELS.sourceDigest] = key.sourceDigests[key.sourceDigests.length - 1];
  if (key.definitionSha256) labels[LABELS.definitionSha256] = key.definitionSha256;
  labels[LABELS.builder] = key.builder;
  if (context.runUrl) labels[LABELS.runUrl] = context.runUrl;
  labels[LABELS.buildKey] = args.buildKey;
  return labels;
}
