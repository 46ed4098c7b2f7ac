// The labels this tool writes into every image: names only, so the configuration and the linter can check a
// user's labels without loading the build.

export const LABEL_PREFIX = 'io.github.sjtu-hpc.build-image';

export const LABELS = {
  source: 'org.opencontainers.image.source',
  revision: 'org.opencontainers.image.revision',
  created: 'org.opencontainers.image.created',
  sourceUri: `${LABEL_PREFIX}.source`,
  sourceDigest: `${LABEL_PREFIX}.source-digest`,
  definitionSha256: `${LABEL_PREFIX}.definition-sha256`,
  builder: `${LABEL_PREFIX}.builder`,
  runUrl: `${LABEL_PREFIX}.run-url`,
  buildKey: `${LABEL_PREFIX}.build-key`,
} as const;

/**
 * Labels only this tool writes: the provenance it vouches for. A user's `labels` input or `%labels` line may not
 * set them (a forged source or run URL would be trusted by skip decisions, retention and cluster users).
 */
export function isReservedLabel(key: string): boolean {
  return key === LABELS.source || key === LABELS.revision || key === LABELS.created || key.startsWith(`${LABEL_PREFIX}.`);
}

/** `%labels` body lines: `key value`, as apptainer reads them (first word is the key). */
export function labelLines(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `    ${k} ${v}`);
}
