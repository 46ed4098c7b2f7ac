// The build stage: lint, resolve the source, build under a temporary name, verify the SIF, then rename it into
// place. Whatever fails, no file is left at the output path.
import { createHash } from 'node:crypto';
import { hold } from '../util/resources.js';
import { mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BuildConfig } from '../config/config.js';
import type { Reporter } from '../report/reporter.js';
import { formatBytes, formatDuration, type Summary } from '../report/summary.js';
import { readSifFile } from '../image/sif.js';
import { runProcess } from '../util/process.js';
import { commandLine } from '../util/shell.js';
import { detectBuilder, readPrivileges, useFakeroot, type BuilderInfo } from './builder.js';
import { parseDefinition } from './definition.js';
import { formatFinding, lintDefinition, type Finding } from './lint.js';
import { buildKey, contextFromEnv, LABELS, provenanceLabels, type BuildContext, type KeyInputs } from './provenance.js';
import { augmentDefinition, pinReference, recipeForSource, stageBases, substitute } from './recipe.js';
import { sha256File } from '../util/hash.js';
import { parseImageRef, resolveDigest, resolveManifestDigest, type ResolveOptions } from './source.js';

export interface BuildResult {
  image: string;
  sha256: string;
  size: number;
  sourceUri: string;
  sourceDigest?: string;
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
}

/** An expected failure: its message is shown to the user as is, without a stack trace. */
export class BuildError extends Error {
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
}

interface Plan {
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

export async function build(config: BuildConfig, reporter: Reporter, options: BuildOptions = {}): Promise<BuildResult> {
  const started = Date.now();
  const env = options.env ?? process.env;
  const context = options.context ?? contextFromEnv(env);
  if (config.registry) reporter.setSecret(config.registry.password);

  // Lint first: a definition with errors never reaches the builder, not even to ask its version.
  const findings = config.definition ? await reporter.group('Lint definition', () => lint(config, reporter)) : [];

  // Asking the builder its version takes a process start; overlap it with resolving the source digests.
  const detected = detectBuilder(config.builder, env.PATH);
  detected.catch(() => undefined); // awaited below; no unhandled rejection if resolving fails first
  const resolved = await reporter.group('Resolve source', () => resolveBases(config, reporter));

  const { builder, fakeroot } = await reporter.group('Prepare', async () => {
    const info = await detected;
    reporter.info(`builder: ${info.product} ${info.version} (${info.path})`);
    const decision = useFakeroot(config.fakeroot, await readPrivileges());
    reporter.info(`fakeroot: ${decision.fakeroot ? 'yes' : 'no'} (${decision.reason})`);
    return { builder: info, fakeroot: decision.fakeroot };
  });

  const plan = makePlan(config, resolved, builder, fakeroot, context);
  const workDir = await mkdtemp(path.join(os.tmpdir(), 'build-image-'));
  // Until removed below, a killed step's post: step (or the CLI's exit path) removes it.
  const unholdDir = hold({ kind: 'temp-dir', path: workDir });
  const recipePath = path.join(workDir, 'build.def');
  const partial = path.join(path.dirname(config.output), `.${path.basename(config.output)}.partial-${process.pid}`);
  const command = builderArgs(config, plan.buildArgs, fakeroot, recipePath, partial);

  const base = {
    sourceUri: plan.sourceUri,
    sourceDigest: plan.sourceDigests[plan.sourceDigests.length - 1],
    buildKey: plan.buildKey,
    builder,
    fakeroot,
    labels: plan.labels,
    findings,
    command: [builder.command, ...command],
  };
  try {
    await writeFile(recipePath, plan.recipe);
    if (config.dryRun) {
      reporter.info(`would run: ${commandLine(builder.command, command)}`);
      reporter.info(`recipe:\n${plan.recipe}`);
      const result: BuildResult = {
        ...base,
        image: config.output,
        sha256: '',
        size: 0,
        durationSeconds: (Date.now() - started) / 1000,
        dryRun: true,
      };
      await reporter.summary(buildSummary(result));
      return result;
    }

    await reporter.group(`Build with ${builder.command}`, async () => {
      reporter.info(`$ ${commandLine(builder.command, command)}`);
      const run = await runProcess(builder.path, command, {
        env: builderEnv(env, builder, config),
        cwd: options.cwd,
        signal: options.signal,
        onLine: (line) => reporter.info(line),
        tailLines: 25,
      });
      if (options.signal?.aborted) throw new BuildError('build cancelled; the partial image was removed');
      if (run.code !== 0) {
        throw new BuildError(`${builder.command} build failed (exit ${run.code}):\n${errorLines(run.tail).join('\n')}`);
      }
    });

    const verified = await reporter.group('Verify image', async () => {
      const info = await readSifFile(partial).catch((error: Error) => {
        throw new BuildError(`${builder.command} produced no valid SIF: ${error.message}`);
      });
      const wantArch = hostSifArch();
      const problems: string[] = [];
      if (!info.primary) problems.push('no primary system partition');
      else if (wantArch && info.primary.arch !== wantArch) problems.push(`architecture ${info.primary.arch}, expected ${wantArch}`);
      if (info.labels[LABELS.buildKey] !== plan.buildKey) problems.push('provenance labels missing from the image');
      if (info.primary?.compression && info.primary.compression !== config.compression) {
        problems.push(`squashfs compression ${info.primary.compression}, expected ${config.compression}`);
      }
      if (problems.length > 0) throw new BuildError(`image verification failed: ${problems.join('; ')}`);
      reporter.info(`SIF ${info.header.version}, ${info.primary!.fsType} ${info.primary!.arch}, ${info.primary!.compression ?? 'unknown'} compression, ${Object.keys(info.labels).length} labels`);
      return info;
    });

    const [sha256, size] = await Promise.all([sha256File(partial), stat(partial).then((s) => s.size)]);
    await rename(partial, config.output);
    const result: BuildResult = {
      ...base,
      image: config.output,
      sha256,
      size,
      durationSeconds: (Date.now() - started) / 1000,
      compression: verified.primary?.compression,
      dryRun: false,
    };
    reporter.setOutput('image', result.image);
    reporter.setOutput('sha256', result.sha256);
    reporter.setOutput('size', String(result.size));
    reporter.setOutput('source-digest', result.sourceDigest ?? '');
    reporter.setOutput('build-key', result.buildKey);
    reporter.setOutput('skipped', 'false');
    await reporter.summary(buildSummary(result));
    return result;
  } finally {
    await rm(partial, { force: true });
    await rm(workDir, { recursive: true, force: true });
    unholdDir();
  }
}

async function lint(config: BuildConfig, reporter: Reporter): Promise<Finding[]> {
  const file = config.definition!;
  // Annotations name files relative to the workspace, as the runner resolves them; elsewhere, the path as is.
  const relative = path.relative(process.env.GITHUB_WORKSPACE ?? process.cwd(), file);
  const shown = relative && !relative.startsWith('..') ? relative : file;
  const text = await readFile(file, 'utf8');
  const findings = lintDefinition(text, { buildArgs: config.buildArgs });
  for (const f of findings) {
    const location = { file: shown, line: f.line, column: f.column };
    if (f.severity === 'error') reporter.error(f.message, location);
    else reporter.warning(f.message, location);
  }
  const errors = findings.filter((f) => f.severity === 'error');
  reporter.info(`${shown}: ${errors.length} error(s), ${findings.length - errors.length} warning(s)`);
  if (errors.length > 0) {
    throw new BuildError(
      `definition ${shown} has ${errors.length} error(s); nothing was built:\n${errors.map((f) => formatFinding(shown, f)).join('\n')}`,
      findings,
    );
  }
  return findings;
}

/** Each base the build pulls, resolved to its content digest. */
interface Resolved {
  sourceUri: string;
  sourceDigests: string[];
  /** For a definition build: its text, sha256 and the `From` lines to pin. */
  definition?: { text: string; sha256: string; pins: Map<number, string> };
}

async function resolveBases(config: BuildConfig, reporter: Reporter): Promise<Resolved> {
  const resolveOptions: ResolveOptions = { insecure: config.registryInsecure, auth: config.registry };
  const fail = (error: unknown): never => {
    throw new BuildError(`source: ${(error as Error).message}`);
  };

  if (config.source) {
    const source = config.source;
    const digest = await resolveDigest(source, resolveOptions).catch(fail);
    reporter.info(`${source.uri} → ${digest}`);
    return { sourceUri: source.uri, sourceDigests: [digest] };
  }

  const file = config.definition!;
  const raw = await readFile(file);
  const text = raw.toString('utf8');
  const def = parseDefinition(text);
  const pins = new Map<number, string>();
  const digests: string[] = [];
  for (const base of stageBases(def, config.buildArgs)) {
    if (base.kind === 'registry') {
      let ref;
      try {
        ref = parseImageRef(base.from.replace(/^(docker|oras):\/\//, ''));
      } catch (error) {
        throw new BuildError(`definition line ${base.line}: From: ${(error as Error).message}`);
      }
      const digest = await resolveManifestDigest(ref, resolveOptions).catch(fail);
      reporter.info(`line ${base.line}: ${base.from} → ${digest}`);
      pins.set(base.line, pinReference(base.from, digest));
      digests.push(digest);
    } else {
      const local = path.resolve(base.from);
      const digest = `sha256:${await sha256File(local).catch(() => fail(new Error(`definition line ${base.line}: file not found: ${base.from}`)))}`;
      reporter.info(`line ${base.line}: ${base.from} → ${digest}`);
      digests.push(digest);
    }
  }
  const last = def.stages[def.stages.length - 1];
  const agent = last?.bootstrap ?? 'unknown';
  const lastFrom = last?.from && substitute(last.from, config.buildArgs, last.argumentsDefaults);
  const sourceUri = !lastFrom ? agent : agent === 'docker' || agent === 'oras' ? `${agent}://${lastFrom}` : `${agent}:${lastFrom}`;
  if (digests.length === 0) reporter.info(`no base digest to resolve for bootstrap agent ${agent}; the build key covers the definition only`);
  const sha256 = createHash('sha256').update(raw).digest('hex');
  return { sourceUri, sourceDigests: digests, definition: { text, sha256, pins } };
}

/** The build key, the labels and the recipe, from what was resolved and which builder runs. */
function makePlan(config: BuildConfig, resolved: Resolved, builder: BuilderInfo, fakeroot: boolean, context: BuildContext): Plan {
  const key: KeyInputs = {
    sourceUri: resolved.sourceUri,
    sourceDigests: resolved.sourceDigests,
    definitionSha256: resolved.definition ? `sha256:${resolved.definition.sha256}` : undefined,
    buildArgs: config.buildArgs,
    labels: config.labels,
    builder: `${builder.product} ${builder.version}`,
    compression: config.compression,
    fakeroot,
  };
  const id = buildKey(key);
  const labels = { ...config.labels, ...provenanceLabels({ context, key, buildKey: id }) };
  const base = { sourceUri: resolved.sourceUri, sourceDigests: resolved.sourceDigests, labels, buildKey: id };
  if (!resolved.definition) {
    return { ...base, recipe: recipeForSource(config.source!, resolved.sourceDigests[0], labels), buildArgs: {} };
  }
  const { text, sha256, pins } = resolved.definition;
  const recipe = augmentDefinition(text, pins, labels);
  const stillUsed = new Set(parseDefinition(recipe).templateVars.filter((v) => !v.commented).map((v) => v.name));
  const buildArgs = Object.fromEntries(Object.entries(config.buildArgs).filter(([name]) => stillUsed.has(name)));
  return { ...base, definitionSha256: sha256, recipe, buildArgs };
}

function builderArgs(config: BuildConfig, buildArgs: Record<string, string>, fakeroot: boolean, recipe: string, output: string): string[] {
  const args = ['build', '--force'];
  if (fakeroot) args.push('--fakeroot');
  if (config.registryInsecure) args.push('--no-https');
  for (const [k, v] of Object.entries(buildArgs)) args.push('--build-arg', `${k}=${v}`);
  if (config.compression !== 'gzip') args.push('--mksquashfs-args', `-comp ${config.compression}`);
  args.push(output, recipe);
  return args;
}

/** Credentials go to the builder through its environment, under the prefix it reads. */
function builderEnv(env: NodeJS.ProcessEnv, builder: BuilderInfo, config: BuildConfig): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  if (config.registry) {
    out[`${builder.envPrefix}DOCKER_USERNAME`] = config.registry.username;
    out[`${builder.envPrefix}DOCKER_PASSWORD`] = config.registry.password;
  }
  return out;
}

/** The lines of a builder's output that explain a failure: its FATAL/ERROR lines and what precedes them. */
function errorLines(tail: string[]): string[] {
  const firstError = tail.findIndex((l) => /^(FATAL|ERROR)/.test(l.trim()));
  const from = firstError < 0 ? Math.max(0, tail.length - 12) : Math.max(0, firstError - 8);
  return tail.slice(from).filter((l) => l.trim() !== '');
}

function hostSifArch(): string | undefined {
  return ({ x64: 'amd64', arm64: 'arm64', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[process.arch];
}

export function buildSummary(result: BuildResult): Summary {
  const facts: Summary['facts'] = [
    { label: 'Image', value: result.image, code: true },
    { label: 'Source', value: result.sourceUri, code: true },
    { label: 'Source digest', value: result.sourceDigest ?? 'not resolvable for this source', code: !!result.sourceDigest },
    { label: 'Builder', value: `${result.builder.product} ${result.builder.version}${result.fakeroot ? ' (--fakeroot)' : ''}` },
    { label: 'Duration', value: formatDuration(result.durationSeconds) },
  ];
  if (!result.dryRun) {
    facts.push({ label: 'Size', value: formatBytes(result.size) });
    facts.push({ label: 'SHA-256', value: result.sha256, code: true });
    if (result.compression) facts.push({ label: 'Compression', value: result.compression });
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
