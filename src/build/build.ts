// The build stage: lint, resolve the source, build under a temporary name, verify the SIF, then rename it into
// place. Whatever fails, no file is left at the output path.
import { createHash } from 'node:crypto';
import { hold } from '../util/resources.js';
import { mkdtemp, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BuildConfig } from '../config/config.js';
import type { Reporter } from '../report/reporter.js';
import { formatBytes, formatDuration, type Summary } from '../report/summary.js';
import { readSifFile, type SifInfo } from '../image/sif.js';
import { runProcess } from '../util/process.js';
import { commandLine } from '../util/shell.js';
import { errorLines, inUserTerms, locateScriptletFailure, scriptletStarted } from './failure.js';
import { buildArgsFile, builderArgs, builderEnv, pullDirs } from './invocation.js';
import { removeStaleLeftovers } from './leftovers.js';
import { handBack, lendToRoot, rootCacheSetting, sudoPreserved } from './as-root.js';
import { BuilderNotFoundError, detectBuilder, isServiceBuilder, readPrivileges, useFakeroot, useSudo, type BuilderInfo } from './builder.js';
import { parseDefinition } from './definition.js';
import { formatFinding, lintDefinition, type Finding } from './lint.js';
import { buildKey, contextFromEnv, LABELS, provenanceLabels, type BuildContext, type KeyInputs } from './provenance.js';
import { augmentDefinition, pinReference, recipeForSource, stageBases, substitute } from './recipe.js';
import { sha256File } from '../util/hash.js';
import { PullWatch } from './pull-watch.js';
import { restoreLayerCache } from './cache.js';
import { DiskSpaceError, DiskWatch, planDisk, type DiskPlan, type SizedBase } from './disk.js';
import { describeChoice, followSourceTag, type TagChoice } from './tags.js';
import { parseImageRef, resolveDigest, resolveManifestDigest, type ResolveOptions, type Source } from './source.js';
import { evaluateKeyInputs, KeyInputError } from './key-inputs.js';
import { HostFileError, hostFiles } from './key-files.js';
import { VERSION } from '../version.js';
import { UserError } from '../user-error.js';

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
  // Sized and placed before anything is pulled: a disk too small fails here, with the numbers.
  const disk = await reporter.group('Disk space', () =>
    planDisk({
      bases: resolved.bases,
      output: config.output,
      tmpDir: config.tmpDir,
      env,
      builder,
      resolve: { insecure: config.registryInsecure, auth: config.registry, signal: options.signal },
      say: (line) => reporter.info(line),
    }).catch((error: Error) => {
      throw error instanceof DiskSpaceError ? new BuildError(error.message) : error;
    }),
  );
  const unholdDisk = hold({ kind: 'temp-dir', path: disk.temporary });
  const runEnv = { ...env, ...disk.env };
  // Leftovers of runs that died (kill -9, a lost runner) are recognised by the PID in their names.
  await removeStaleLeftovers(config.output, reporter, disk.root);
  const workDir = await mkdtemp(path.join(os.tmpdir(), `build-image-${process.pid}-`)).catch(async (error: NodeJS.ErrnoException) => {
    await rm(disk.temporary, { recursive: true, force: true });
    unholdDisk();
    throw error.code === 'ENOSPC' ? await noSpaceError(error.path ?? os.tmpdir(), config, env) : error;
  });
  // Until removed below, a killed step's post: step (or the CLI's exit path) removes it.
  const unholdDir = hold({ kind: 'temp-dir', path: workDir });
  const recipePath = path.join(workDir, 'build.def');
  const partialName = path.join(path.dirname(config.output), `.${path.basename(config.output)}.partial-${process.pid}`);
  // Through sudo, the partial image is written inside a directory lent to root (see as-root.ts).
  const partial = asRoot ? path.join(partialName, 'image.sif') : partialName;
  // The partial image too: a post: step after a killed build removes it (rm works on files as on directories).
  const unholdPartial = hold({ kind: 'temp-dir', path: partialName });
  const argsFile = path.join(workDir, 'build-args');
  const command = builderArgs(config, plan.buildArgs, fakeroot, recipePath, partial, argsFile);

  const base = {
    sourceUri: plan.sourceUri,
    sourceDigest: plan.sourceDigests[plan.sourceDigests.length - 1],
    sourceTag: resolved.sourceTag,
    disk: diskFacts(disk),
    buildKey: plan.buildKey,
    builder,
    fakeroot,
    labels: plan.labels,
    findings,
    command: [builder.command, ...command],
  };
  try {
    await writeFile(recipePath, plan.recipe);
    if (Object.keys(plan.buildArgs).length > 0) await writeFile(argsFile, buildArgsFile(plan.buildArgs), { mode: 0o600 });
    const rootCache = asRoot ? rootCacheSetting(runEnv, builder).cache : undefined;
    if (config.dryRun) {
      reporter.info(`would run: ${commandLine(builder.command, command)}`);
      reporter.info(`recipe:\n${plan.recipe}`);
      reporter.setOutput('build-key', plan.buildKey);
      reporter.setOutput('skipped', 'false');
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

    // Layers an earlier run downloaded come back into the builder's cache directory before it pulls.
    const layerCache = await restoreLayerCache({ ...plan, setting: config.cache, env: builderEnv(runEnv, builder, config, asRoot), builder, reporter });
    await reporter.group(`Build with ${builder.command}`, async () => {
      reporter.info(`$ ${commandLine(builder.command, command)}`);
      // The build-timeout and a cancellation both end the builder's whole process group.
      const deadline = new AbortController();
      const timer = setTimeout(() => deadline.abort(), config.timeoutMs ?? 6 * 3600_000);
      const onAbort = () => deadline.abort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      if (options.signal?.aborted) deadline.abort();
      let stalled = false;
      const watch = new PullWatch(pullDirs(runEnv, builder), config.pullStallMs ?? 5 * 60_000, () => {
        stalled = true;
        deadline.abort();
      });
      watch.start();
      const builderEnvironment = builderEnv(runEnv, builder, config, asRoot);
      const scriptlets: string[] = [];
      const diskWatch = new DiskWatch(disk.root);
      await diskWatch.begin();
      const launch = async () => {
        if (asRoot) await lendToRoot([workDir, partialName, disk.temporary, rootCache!]);
        return runProcess(builder.path, command, {
          env: builderEnvironment,
          sudo: asRoot ? { preserveEnv: sudoPreserved(builderEnvironment, builder) } : undefined,
          cwd: options.cwd,
          signal: deadline.signal,
          onLine: (line) => {
            watch.line(line);
            const scriptlet = scriptletStarted(line);
            if (scriptlet) scriptlets.push(scriptlet);
            reporter.info(line);
          },
          tailLines: 25,
          ownGroup: true,
        });
      };
      const run = await launch().finally(async () => {
        base.disk.peak = await diskWatch.end();
        reporter.info(`disk: ${formatBytes(base.disk.peak)} used at most on the file system of ${disk.root} (estimated ${formatBytes(base.disk.needed)})`);
        watch.stop();
        clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        // Root wrote the image and the layer cache: both go back to the step's user, whatever the outcome.
        if (asRoot) await handBack(asRoot, [workDir, partialName, disk.temporary, rootCache!], reporter);
      });
      if (stalled) {
        throw new BuildError(
          `the pull of ${base.sourceUri} from ${registryOf(base.sourceUri)} stalled: no data for ${formatDuration((config.pullStallMs ?? 0) / 1000)} (pull-stall-timeout); the builder and its children were stopped, nothing was written to ${config.output}`,
        );
      }
      if (options.signal?.aborted) throw new BuildError('build cancelled; the partial image was removed');
      if (deadline.signal.aborted) {
        throw new BuildError(`build timed out after ${formatDuration((config.timeoutMs ?? 0) / 1000)} (build-timeout) building ${config.definition ? `${config.definition} (from ${base.sourceUri})` : base.sourceUri}; the builder and its children were stopped, nothing was written to ${config.output}`);
      }
      if (run.code !== 0) {
        const lines = inUserTerms(errorLines(run.tail), recipePath, config.definition);
        const full = run.tail.map((l) => /\b(?:write|open|mkdir|create|copy)\w*\s+(\/\S+?):?\s+no space left on device/i.exec(l)).find(Boolean);
        if (full) throw await noSpaceError(full[1], config, runEnv);
        if (run.tail.some((l) => /no space left on device/i.test(l))) throw await noSpaceError(undefined, config, runEnv, lines);
        // A failed scriptlet names the user's file and line.
        const failed = config.definition ? locateScriptletFailure(run.tail, scriptlets, await readFile(config.definition, 'utf8'), config.definition) : undefined;
        if (failed) {
          const what = failed.command === undefined ? '' : ` at \`${failed.command}\``;
          throw new BuildError(`%${failed.section} failed${what} (${failed.where}), exit status ${failed.status}:\n${lines.join('\n')}`);
        }
        // A failure while fetching names what was being fetched and from where, not only apptainer's own words.
        const what = watch.pulling || run.tail.some((l) => /conveyor failed|while fetching|unexpected EOF|pulling|manifest unknown/i.test(l))
          ? `pulling ${base.sourceUri} from ${registryOf(base.sourceUri)} failed`
          : `${builder.command} build failed`;
        throw new BuildError(`${what} (exit ${run.code}):\n${lines.join('\n')}`);
      }
    });

    if (layerCache) await reporter.group('Save layer cache', () => layerCache.save());

    const verified = await reporter.group('Verify image', () => verifySif(partial, builder, plan.buildKey, reporter, config.compression));

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
    await reportBuilt(result, reporter);
    return result;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e.code === 'ENOSPC') throw await noSpaceError(e.path ?? workDir, config, runEnv);
    throw error;
  } finally {
    await rm(partialName, { recursive: true, force: true });
    await rm(workDir, { recursive: true, force: true });
    await rm(disk.temporary, { recursive: true, force: true });
    unholdDisk();
    unholdDir();
    unholdPartial();
  }
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
/**
 * A full file system, said as a user can act on it: which path, which setting put it there (TMPDIR,
 * APPTAINER_TMPDIR, APPTAINER_CACHEDIR or output) and how much is free. With no path (the builder's own
 * "no space left on device"), every place the build writes to, with its free space.
 */
async function noSpaceError(where: string | undefined, config: BuildConfig, env: NodeJS.ProcessEnv, builderLines: string[] = []): Promise<BuildError> {
  const places: [string, string][] = [
    ['output', path.dirname(config.output)],
    ['APPTAINER_TMPDIR', env.APPTAINER_TMPDIR ?? env.SINGULARITY_TMPDIR ?? ''],
    ['APPTAINER_CACHEDIR', env.APPTAINER_CACHEDIR ?? env.SINGULARITY_CACHEDIR ?? ''],
    ['TMPDIR', env.TMPDIR ?? os.tmpdir()],
  ].filter(([, dir]) => dir !== '') as [string, string][];
  const free = async (dir: string) => {
    const st = await statfs(dir).catch(() => undefined);
    return st ? formatBytes(st.bavail * st.bsize) : 'unknown';
  };
  if (where) {
    // The deepest directory that holds the path says which setting put it there.
    const holding = places.filter(([, d]) => where === d || where.startsWith(`${d.replace(/\/+$/, '')}/`)).sort((a, b) => b[1].length - a[1].length);
    const [setting, dir] = holding[0] ?? ['TMPDIR', os.tmpdir()];
    return new BuildError(`no space left on the file system of ${where} (${setting}: ${dir}, ${await free(dir)} free); free space there, or set ${setting} to a larger file system`);
  }
  const described = await Promise.all(places.map(async ([setting, dir]) => `${setting} ${dir}: ${await free(dir)} free`));
  return new BuildError(
    `the builder ran out of space (no space left on device). Where the build writes: ${described.join('; ')}. ` +
      `Free space, or point the full one at a larger file system.${builderLines.length ? `\n${builderLines.join('\n')}` : ''}`,
  );
}

/** The registry host of a `docker://` or `oras://` URI, or what the source is otherwise. */
function registryOf(uri: string): string {
  const m = /^(?:docker|oras):\/\/([^/]+)\//.exec(uri);
  return m && /[.:]|^localhost$/.test(m[1]) ? `registry ${m[1]}` : m ? 'registry docker.io' : 'its location';
}

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

/** What the summary says about the disk: where, how much was free and needed (the peak is added after the build). */
function diskFacts(plan: DiskPlan): NonNullable<BuildResult['disk']> {
  return { root: plan.root, free: plan.free, needed: plan.needed };
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
