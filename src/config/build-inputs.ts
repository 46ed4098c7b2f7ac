// The build inputs: the source or definition, the output path, the builder's settings and the registry account.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import type { BuildConfig } from './config-types.js';
import type { Reader } from './reader.js';
import { isReservedLabel } from '../build/labels.js';
import { parseSource, type Source } from '../build/source.js';
import { parseTagPattern, sourceTagProblem, type TagPattern } from '../build/tags.js';
import { keyInputLines } from '../build/key-inputs.js';

export function readBuild(r: Reader, cwd: string, name: string | undefined, dryRun: boolean, check: boolean): Omit<BuildConfig, 'formats'> {
  const builder = r.enum('builder');
  const fakeroot = r.enum('fakeroot');
  const sudo = r.enum('sudo');
  const compression = r.enum('compression');
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
  if (source && (builder === 'enroot' || builder === 'u2cb') && source.kind !== 'docker') {
    r.problem('source', `builder ${builder} imports from a registry: give a docker:// source (got ${source.kind === 'sif' ? 'a .sif file' : source.kind})`);
  }
  const sourceTagPattern = readTagPattern(r, source, definitionText, check);
  if (Object.keys(buildArgs).length > 0 && sourceText) {
    r.problem('build-args', 'build arguments only apply to a `definition` build');
  }

  const outputText = r.string('output') ?? `${name ?? 'image'}.${builder === 'enroot' ? 'sqsh' : 'sif'}`;
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
  // The service pulls by itself; its client takes no credentials.
  if (registry && builder === 'u2cb' && check) r.problem('registry-username', 'builder u2cb cannot pass registry credentials to the U2CB service: build from a public image, or use builder enroot or apptainer');

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
    cache: r.enum('cache'),
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
