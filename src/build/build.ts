// The build stage: lint, resolve the source, build under a temporary name, verify the SIF, then rename it into
// place. Whatever fails, no file is left at the output path.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildConfig } from '../config/config.js';
import type { Reporter } from '../report/reporter.js';
import { BuilderNotFoundError, detectBuilder, isServiceBuilder, readPrivileges, useFakeroot, useSudo, type BuilderInfo } from './builder.js';
import { parseDefinition } from './definition.js';
import { formatFinding, lintDefinition, type Finding } from './lint.js';
import { buildKey, contextFromEnv, provenanceLabels, type BuildContext, type KeyInputs } from './provenance.js';
import { augmentDefinition, pinReference, recipeForSource, stageBases, substitute } from './recipe.js';
import { sha256File } from '../util/hash.js';
import { type SizedBase } from './disk.js';
import { followSourceTag, type TagChoice } from './tags.js';
import { parseImageRef, resolveDigest, resolveManifestDigest, type ResolveOptions, type Source } from './source.js';
import { evaluateKeyInputs, KeyInputError } from './key-inputs.js';
import { HostFileError, hostFiles } from './key-files.js';
import { VERSION } from '../version.js';
import { buildWithApptainer } from './apptainer.js';
import { BuildError, buildSummary, type BuildOptions, type BuildResult, type Plan } from './result.js';

export { BuildError, buildSummary, reportBuilt, verifySif, type BuildOptions, type BuildResult, type Plan } from './result.js';

export async function build(config: BuildConfig, reporter: Reporter, options: BuildOptions = {}): Promise<BuildResult> {
  const started = Date.now();
  const env = options.env ?? process.env;
  const context = options.context ?? contextFromEnv(env);
  if (config.registry) reporter.setSecret(config.registry.password);

  // Lint first: a definition with errors never reaches the builder, not even to ask its version.
  const findings = config.definition ? await reporter.group('Lint definition', () => lint(config, reporter, !!options.unchanged)) : [];

  // Asking the builder its version (and sudo whether it may) takes process starts; overlap them with resolving
  // the source digests.
  const elsewhere = isServiceBuilder(config.builder);
  const sudoDecision = elsewhere ? Promise.resolve({ asRoot: undefined, reason: `not used by builder ${config.builder}` }) : useSudo(config.sudo);
  const detected = sudoDecision.then((sudo) =>
    detectBuilder(config.builder, env.PATH, sudo.asRoot).catch((error: Error) => {
      // A builder that cannot start as this user: say why sudo was not used, the other way to root.
      if (!sudo.asRoot && error instanceof BuilderNotFoundError && sudo.reason !== 'already root') error.message += ` (sudo not used: ${sudo.reason})`;
      throw error;
    }),
  );
  detected.catch(() => undefined); // awaited below; no unhandled rejection if resolving fails first
  const resolved = await reporter.group('Resolve source', () => untilAborted(resolveBases(config, reporter, options.signal), options.signal));
  if (config.sourceTagPattern) reporter.setOutput('source-tag', resolved.sourceTag?.tag ?? '');

  const { builder, fakeroot, asRoot } = await reporter.group('Prepare', async () => {
    const info = await detected;
    reporter.info(`builder: ${info.product} ${info.version} (${info.path})`);
    const sudo = await sudoDecision;
    reporter.info(`sudo: ${sudo.asRoot ? 'yes' : 'no'} (${sudo.reason})`);
    const decision = elsewhere ? { fakeroot: false, reason: `not used by builder ${config.builder}` } : useFakeroot(config.fakeroot, await readPrivileges(sudo.asRoot));
    reporter.info(`fakeroot: ${decision.fakeroot ? 'yes' : 'no'} (${decision.reason})`);
    return { builder: info, fakeroot: decision.fakeroot, asRoot: sudo.asRoot };
  });

  const extra = await reporter.group('Build key', () => keyExtras(config, resolved, reporter, options));
  const plan = makePlan(config, resolved, builder, fakeroot, context, extra);
  const skipReason = options.unchanged ? await reporter.group('Compare with the published image', () => options.unchanged!(plan.buildKey)) : undefined;
  if (skipReason) return skipped(config, plan, { builder, fakeroot, findings, started, reason: skipReason }, reporter);
  if (elsewhere) {
    const job = { config, reporter, options, plan, builder, findings, started, sourceTag: resolved.sourceTag };
    return builder.command === 'enroot' ? (await import('./enroot.js')).buildWithEnroot(job) : (await import('./u2cb.js')).buildWithU2cb(job);
  }
  return buildWithApptainer({ config, reporter, options, plan, builder, findings, started, sourceTag: resolved.sourceTag, bases: resolved.bases, env, fakeroot, asRoot });
}

async function lint(config: BuildConfig, reporter: Reporter, skipping: boolean): Promise<Finding[]> {
  const file = config.definition!;
  // Annotations name files relative to the workspace, as the runner resolves them; elsewhere, the path as is.
  const relative = path.relative(process.env.GITHUB_WORKSPACE ?? process.cwd(), file);
  const shown = relative && !relative.startsWith('..') ? relative : file;
  const text = await readFile(file, 'utf8');
  const findings = lintDefinition(text, { buildArgs: config.buildArgs, skipping, keyInputs: config.keyInputs.length > 0 });
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
  /** The source built (with the tag `source-tag-pattern` chose), for a `source` build. */
  source?: Source;
  sourceTag?: TagChoice;
  sourceUri: string;
  sourceDigests: string[];
  /** What the build pulls, for sizing it. */
  bases: SizedBase[];
  /** For a definition build: its text, sha256 and the `From` lines to pin. */
  definition?: { text: string; sha256: string; pins: Map<number, string> };
}

function sourceResolveOptions(config: BuildConfig, signal?: AbortSignal): ResolveOptions {
  return { insecure: config.registryInsecure, auth: config.registry, signal };
}

/** The source to build: with `source-tag-pattern`, its newest matching tag, chosen once per run (`chosenTag`). */
export async function followSource(config: BuildConfig, reporter: Reporter, signal?: AbortSignal): Promise<{ source: Source; choice?: TagChoice }> {
  return followSourceTag(config.source!, config.sourceTagPattern, sourceResolveOptions(config, signal), (line) => reporter.info(line), config.chosenTag).catch((error: Error) => {
    throw new BuildError(error.message.startsWith('source-tag-pattern') ? error.message : `source: ${error.message}`);
  });
}

async function resolveBases(config: BuildConfig, reporter: Reporter, signal?: AbortSignal): Promise<Resolved> {
  const resolveOptions = sourceResolveOptions(config, signal);
  const fail = (error: unknown): never => {
    throw new BuildError(`source: ${(error as Error).message}`);
  };

  if (config.source) {
    const { source, choice } = await followSource(config, reporter, signal);
    const digest = await resolveDigest(source, resolveOptions).catch(fail);
    reporter.info(`${source.uri} → ${digest}`);
    const base: SizedBase = source.kind === 'docker' || source.kind === 'oras' ? { kind: 'registry', ref: { ...source.ref, digest }, shown: source.uri } : { kind: 'file', path: source.path, shown: source.uri };
    return { source, sourceTag: choice, sourceUri: source.uri, sourceDigests: [digest], bases: [base] };
  }

  const file = config.definition!;
  const raw = await readFile(file);
  const text = raw.toString('utf8');
  const def = parseDefinition(text);
  const pins = new Map<number, string>();
  const digests: string[] = [];
  const sized: SizedBase[] = [];
  const stages = stageBases(def, config.buildArgs);
  def.stages.forEach((stage, i) => {
    if (!stages.some((b) => b.stageIndex === i) && stage.bootstrap && stage.bootstrap.toLowerCase() !== 'scratch') sized.push({ kind: 'unknown', shown: `Bootstrap: ${stage.bootstrap}` });
  });
  for (const base of stages) {
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
      sized.push({ kind: 'registry', ref: { ...ref, digest }, shown: base.from });
    } else {
      const local = path.resolve(base.from);
      const digest = `sha256:${await sha256File(local).catch(() => fail(new Error(`definition line ${base.line}: file not found: ${base.from}`)))}`;
      reporter.info(`line ${base.line}: ${base.from} → ${digest}`);
      digests.push(digest);
      sized.push({ kind: 'file', path: local, shown: base.from });
    }
  }
  const last = def.stages[def.stages.length - 1];
  const agent = last?.bootstrap ?? 'unknown';
  const lastFrom = last?.from && substitute(last.from, config.buildArgs, last.argumentsDefaults);
  const sourceUri = !lastFrom ? agent : agent === 'docker' || agent === 'oras' ? `${agent}://${lastFrom}` : `${agent}:${lastFrom}`;
  if (digests.length === 0) reporter.info(`no base digest to resolve for bootstrap agent ${agent}; the build key covers the definition only`);
  const sha256 = createHash('sha256').update(raw).digest('hex');
  return { sourceUri, sourceDigests: digests, bases: sized, definition: { text, sha256, pins } };
}

/** What joins the build key besides the source and definition: host files and `key-inputs`. */
async function keyExtras(config: BuildConfig, resolved: Resolved, reporter: Reporter, options: BuildOptions): Promise<{ hostFiles?: string; keyInputs: string[] }> {
  const cwd = options.cwd ?? process.cwd();
  let hostFilesDigest: string | undefined;
  if (resolved.definition) {
    const found = await hostFiles(resolved.definition.text, cwd, config.buildArgs).catch((error: Error) => {
      throw error instanceof HostFileError ? new BuildError(`definition ${config.definition}: ${error.message.replace(/^definition /, '')}`) : error;
    });
    hostFilesDigest = found.digest;
    reporter.info(found.files.length === 0 ? 'host files: none (%files and %setup name no file on this machine)' : `host files (%files, %setup): ${found.files.length}, digest ${found.digest}`);
  }
  const inputs = await evaluateKeyInputs(config.keyInputs, { cwd, env: options.env, signal: options.signal }).catch((error: Error) => {
    throw error instanceof KeyInputError ? new BuildError(error.message) : error;
  });
  for (const input of inputs) reporter.info(input.line === input.value ? `key input: ${input.value}` : `key input: ${input.line} → ${input.value}`);
  return { hostFiles: hostFilesDigest, keyInputs: inputs.map((i) => i.value) };
}

/** The outcome of a run whose image is already published: outputs and summary say so, nothing was built. */
async function skipped(
  config: BuildConfig,
  plan: Plan,
  facts: { builder: BuilderInfo; fakeroot: boolean; findings: Finding[]; started: number; reason: string },
  reporter: Reporter,
): Promise<BuildResult> {
  const result: BuildResult = {
    image: '',
    sha256: '',
    size: 0,
    sourceUri: plan.sourceUri,
    sourceDigest: plan.sourceDigests[plan.sourceDigests.length - 1],
    buildKey: plan.buildKey,
    builder: facts.builder,
    fakeroot: facts.fakeroot,
    labels: plan.labels,
    findings: facts.findings,
    durationSeconds: (Date.now() - facts.started) / 1000,
    dryRun: config.dryRun,
    command: [],
    skipped: facts.reason,
  };
  reporter.info(`skipped: ${facts.reason}`);
  reporter.setOutput('source-digest', result.sourceDigest ?? '');
  reporter.setOutput('build-key', result.buildKey);
  reporter.setOutput('skipped', 'true');
  reporter.setOutput('skip-reason', facts.reason);
  await reporter.summary(buildSummary(result));
  return result;
}

/** The build key, the labels and the recipe, from what was resolved and which builder runs. */
function makePlan(config: BuildConfig, resolved: Resolved, builder: BuilderInfo, fakeroot: boolean, context: BuildContext, extra: { hostFiles?: string; keyInputs: string[] }): Plan {
  const key: KeyInputs = {
    sourceUri: resolved.sourceUri,
    sourceDigests: resolved.sourceDigests,
    definitionSha256: resolved.definition ? `sha256:${resolved.definition.sha256}` : undefined,
    buildArgs: config.buildArgs,
    labels: config.labels,
    builder: `${builder.product} ${builder.version}`,
    compression: config.compression,
    fakeroot,
    actionVersion: VERSION,
    hostFiles: extra.hostFiles,
    keyInputs: extra.keyInputs,
  };
  const id = buildKey(key);
  const labels = { ...config.labels, ...provenanceLabels({ context, key, buildKey: id }) };
  const base = { sourceUri: resolved.sourceUri, sourceDigests: resolved.sourceDigests, labels, buildKey: id };
  if (!resolved.definition) {
    return { ...base, recipe: recipeForSource(resolved.source ?? config.source!, resolved.sourceDigests[0], labels), buildArgs: {} };
  }
  const { text, sha256, pins } = resolved.definition;
  const recipe = augmentDefinition(text, pins, labels);
  const stillUsed = new Set(parseDefinition(recipe).templateVars.filter((v) => !v.commented).map((v) => v.name));
  const buildArgs = Object.fromEntries(Object.entries(config.buildArgs).filter(([name]) => stillUsed.has(name)));
  return { ...base, definitionSha256: sha256, recipe, buildArgs };
}

/**
 * Build arguments as `--build-arg-file` reads them: one `KEY=VALUE` a line, the value taken literally (commas,
 * quotes, `$`, backslashes), where `--build-arg` would parse the values as CSV and break on `,` or `"`.
 */
/** Resolves like `work`, or rejects at once when the run is cancelled (a digest lookup must not delay a SIGTERM). */
function untilAborted<T>(work: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return work;
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(new BuildError('build cancelled while resolving the source; nothing was built'));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

