// The SIF build with apptainer (or SingularityCE): the disk placed and sized before anything is pulled, the recipe
// and build arguments in a private work directory, the builder run in its own process group under build-timeout,
// pull-stall-timeout and cancellation (through sudo when the step is not root), its failure explained in the user's
// terms, the image verified and renamed into place. Nothing is left behind, whatever the outcome.
import { mkdtemp, readFile, rename, rm, stat, statfs, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BuildConfig } from '../config/config.js';
import { formatBytes, formatDuration } from '../report/summary.js';
import { sha256File } from '../util/hash.js';
import { runProcess } from '../util/process.js';
import { hold } from '../util/resources.js';
import { commandLine } from '../util/shell.js';
import { handBack, lendToRoot, rootCacheSetting, sudoPreserved } from './as-root.js';
import type { AsRoot } from './builder.js';
import { restoreLayerCache } from './cache.js';
import { DiskSpaceError, DiskWatch, planDisk, type DiskPlan, type SizedBase } from './disk.js';
import type { ElsewhereJob } from './elsewhere.js';
import { errorLines, inUserTerms, locateScriptletFailure, scriptletStarted } from './failure.js';
import { buildArgsFile, builderArgs, builderEnv, pullDirs } from './invocation.js';
import { removeStaleLeftovers } from './leftovers.js';
import { PullWatch } from './pull-watch.js';
import { BuildError, buildSummary, reportBuilt, verifySif, type BuildResult } from './result.js';

/** The plan, made as for every builder, and what apptainer needs besides: the bases to size, root through sudo. */
export interface ApptainerJob extends ElsewhereJob {
  bases: SizedBase[];
  env: NodeJS.ProcessEnv;
  fakeroot: boolean;
  asRoot?: AsRoot;
}

export async function buildWithApptainer(job: ApptainerJob): Promise<BuildResult> {
  const { config, reporter, options, plan, builder, findings, started, env, fakeroot, asRoot } = job;
  // Sized and placed before anything is pulled: a disk too small fails here, with the numbers.
  const disk = await reporter.group('Disk space', () =>
    planDisk({
      bases: job.bases,
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
    sourceTag: job.sourceTag,
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
      if (run.code !== 0) throw await builderFailure({ tail: run.tail, code: run.code, scriptlets, pulling: watch.pulling, recipePath, sourceUri: base.sourceUri, command: builder.command, config, env: runEnv });
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

/** Why the builder failed, in the user's terms: a full disk, a failed scriptlet's line, or a pull's source. */
async function builderFailure(f: {
  tail: string[];
  code: number | null;
  scriptlets: string[];
  pulling: boolean;
  recipePath: string;
  sourceUri: string;
  command: string;
  config: BuildConfig;
  env: NodeJS.ProcessEnv;
}): Promise<BuildError> {
  const { tail: runTail, config } = f;
  const lines = inUserTerms(errorLines(runTail), f.recipePath, config.definition);
  const full = runTail.map((l) => /\b(?:write|open|mkdir|create|copy)\w*\s+(\/\S+?):?\s+no space left on device/i.exec(l)).find(Boolean);
  if (full) return noSpaceError(full[1], config, f.env);
  if (runTail.some((l) => /no space left on device/i.test(l))) return noSpaceError(undefined, config, f.env, lines);
  // A failed scriptlet names the user's file and line.
  const failed = config.definition ? locateScriptletFailure(runTail, f.scriptlets, await readFile(config.definition, 'utf8'), config.definition) : undefined;
  if (failed) {
    const what = failed.command === undefined ? '' : ` at \`${failed.command}\``;
    return new BuildError(`%${failed.section} failed${what} (${failed.where}), exit status ${failed.status}:\n${lines.join('\n')}`);
  }
  // A failure while fetching names what was being fetched and from where, not only apptainer's own words.
  const what = f.pulling || runTail.some((l) => /conveyor failed|while fetching|unexpected EOF|pulling|manifest unknown/i.test(l))
    ? `pulling ${f.sourceUri} from ${registryOf(f.sourceUri)} failed`
    : `${f.command} build failed`;
  return new BuildError(`${what} (exit ${f.code}):\n${lines.join('\n')}`);
}

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

/** What the summary says about the disk: where, how much was free and needed (the peak is added after the build). */
function diskFacts(plan: DiskPlan): NonNullable<BuildResult['disk']> {
  return { root: plan.root, free: plan.free, needed: plan.needed };
}

