// Chains the stages: build → stage (SFTP) → smoke → promote → docs PR. Each stage is one function over typed
// options; this file maps the configuration onto them and is the only place that knows their order. A later
// step never runs after an earlier one failed, so the live path only ever gets a verified, smoke-tested image
// and the docs PR is only opened after promotion.
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config/config.js';
import type { Reporter } from './report/reporter.js';
import { build, followSource, type BuildResult } from './build/build.js';
import { nameWithTag } from './config/naming.js';
import { contextFromEnv, LABELS } from './build/provenance.js';
import { sha256File } from './util/hash.js';
import { readSifFile } from './image/sif.js';
import type { RunRecord } from './publish/record.js';
import type { SftpSession } from './publish/session.js';
import { promoteOptions, stageOptions } from './pipeline-options.js';
import { deriveSqsh, sqshName } from './formats.js';
import { sqshPathFor, sqshRemoteName } from './image/format-names.js';
import { StageInputError, UserError } from './user-error.js';

export { StageInputError };

export type Step = 'build' | 'stage' | 'smoke' | 'promote' | 'docs';

export interface PipelineResult {
  build?: BuildResult;
  staged?: import('./publish/stage.js').StageResult;
  smoke?: import('./smoke/smoke.js').SmokeResult;
  promoted?: import('./publish/promote.js').PromoteResult;
  stagedSqsh?: import('./publish/stage.js').StageResult;
  promotedSqsh?: import('./publish/promote.js').PromoteResult;
  /** The enroot image derived from the SIF (`formats: sif,sqsh`). */
  sqsh?: import('./image/sqsh.js').SqshResult;
  docs?: import('./docs/pull-request.js').PullRequestResult;
}

/** The steps a `stage` value runs; SFTP and docs steps only where their inputs are set. */
export function stepsFor(config: Config): Step[] {
  const sftp = !!config.remote.sftp;
  const docs = !!config.docs.repo;
  switch (config.stage) {
    case 'build':
      return sftp ? ['build', 'stage'] : ['build'];
    case 'smoke':
      return ['smoke'];
    case 'publish':
      return docs ? ['promote', 'docs'] : ['promote'];
    case 'all':
      return ['build', ...(sftp ? (['stage'] as Step[]) : []), 'smoke', ...(sftp ? (['promote'] as Step[]) : []), ...(docs && sftp ? (['docs'] as Step[]) : [])];
  }
}

/**
 * A `remote-name` with `{tag}` and a `source-tag-pattern`: the tag is chosen now, before the unchanged check and
 * the immutability check look at the published name, and the build reuses the choice.
 */
async function nameAfterSourceTag(config: Config, reporter: Reporter, signal?: AbortSignal): Promise<void> {
  const { choice } = await followSource(config.build, reporter, signal);
  if (!choice) return;
  config.build = { ...config.build, chosenTag: choice };
  config.remote = { ...config.remote, remoteName: nameWithTag(config.remote.remoteName!, choice.tag) };
}

export async function runPipeline(
  config: Config,
  reporter: Reporter,
  signal?: AbortSignal,
  steps: Step[] = stepsFor(config),
): Promise<PipelineResult> {
  // The publish steps (the immutable check, the staged record, promotion of each format, the record beside the live
  // image) share one SSH connection, opened when first needed and kept through the docs PR.
  const sftp = steps.includes('promote') ? config.remote.sftp : undefined;
  const session = sftp && new (await import('./publish/session.js')).SftpSession(sftp, { reporter, signal });
  try {
    return await runSteps(config, reporter, signal, steps, session);
  } finally {
    await session?.end();
  }
}

async function runSteps(config: Config, reporter: Reporter, signal: AbortSignal | undefined, steps: Step[], session: SftpSession | undefined): Promise<PipelineResult> {
  const result: PipelineResult = {};
  const runUrl = contextFromEnv(process.env).runUrl;
  if (config.dryRun && steps.some((s) => s !== 'build')) {
    reporter.info(`dry run: would run ${steps.join(' → ')}`);
  }

  if (config.skipped && !steps.includes('build')) {
    // A separate smoke or publish job after a skipped build: the published image is current already.
    reporter.info(`skipped: the build job found the published image unchanged (input skipped: true); nothing to ${config.stage === 'smoke' ? 'smoke-test' : 'publish'}`);
    reporter.setOutput('skipped', 'true');
    return result;
  }

  if (steps.includes('build') && !config.dryRun && config.remote.remoteName?.includes('{tag}')) await nameAfterSourceTag(config, reporter, signal);
  if (config.remote.remoteName) reporter.setOutput('remote-name', config.remote.remoteName);
  if (!steps.includes('build') && (steps.includes('stage') || steps.includes('promote')) && !config.dryRun) {
    const { refuseOverwrite } = await import('./skip.js');
    await refuseOverwrite(config, reporter, signal, session);
  }

  const { RecordKeeper } = await import('./run-record.js');
  const record = new RecordKeeper(config, reporter, contextFromEnv(process.env));

  if (steps.includes('build')) {
    const { unchangedCheck } = await import('./skip.js');
    result.build = await build(config.build, reporter, { signal, unchanged: unchangedCheck(config, reporter, signal) });
    // The published image has this build key already: no upload, no smoke test, no promotion, no PR.
    if (result.build.skipped) return result;
    if (config.build.formats.includes('sqsh')) result.sqsh = await deriveSqsh(config, result.build, reporter, signal);
    await record.afterBuild(result.build, result.sqsh);
  }

  if (steps.includes('stage') && !config.dryRun) {
    const { stageImage } = await import('./publish/stage.js');
    const image = result.build?.image ?? requireImage(config);
    result.staged = await reporter.group('Stage over SFTP', () => stageImage(stageOptions(config, image, config.remote.remoteName!, reporter, signal, runUrl)));
    reporter.setOutput('staged-path', result.staged.stagedPath);
    // The build step already set it for the same file; one line each in GITHUB_OUTPUT.
    if (!result.build) reporter.setOutput('sha256', result.staged.sha256);
    reporter.setOutput('bytes-sent', String(result.staged.bytesSent));
    reporter.setOutput('upload-skipped', String(result.staged.uploadSkipped));
    if (config.build.formats.includes('sqsh')) {
      const sqsh = result.sqsh?.path ?? sqshImage(image);
      result.stagedSqsh = await reporter.group('Stage the .sqsh over SFTP', () => stageImage(stageOptions(config, sqsh, sqshName(config), reporter, signal, runUrl)));
      reporter.setOutput('sqsh-staged-path', result.stagedSqsh.stagedPath);
    }
    await record.afterStage(session);
  }

  if (steps.includes('smoke')) {
    const { smokeTest } = await import('./smoke/smoke.js');
    const { smokeEachFormat } = await import('./smoke/by-format.js');
    const sif = result.build?.image ?? smokeImage(config);
    // pyxis runs enroot images: with `formats: sif,sqsh` it tests the .sqsh made beside the SIF by default.
    const formats = config.smoke.formats ?? [config.smoke.launcher === 'pyxis' && config.build.formats.includes('sqsh') ? 'sqsh' : 'sif'];
    const images = formats.map((format) => ({ format, image: format === 'sqsh' ? (result.sqsh?.path ?? sqshPathFor(sif)) : sif }));
    const { baseline: _configured, formats: _formats, ...smoke } = config.smoke;
    const options = {
      ...smoke,
      baseline: baselineImage(config, reporter),
      dryRun: config.dryRun,
      // enroot's .sqsh and U2CB's SIF are run by the launchers' own choice of runtime.
      builder: config.build.builder === 'apptainer' || config.build.builder === 'singularity' ? config.build.builder : undefined,
      reporter,
      signal,
    };
    // Every format's figures are the smoke-json output and the record's (see smoke/by-format.ts for the shape).
    const { result: smoked } = await smokeEachFormat(images, options, smokeTest).catch((error: Error & { result?: { json: string } }) => {
      // A failed gate still measured something: keep it in the output for the workflow to show.
      if (error.result) reporter.setOutput('smoke-json', error.result.json);
      throw error;
    });
    result.smoke = smoked;
    reporter.setOutput('smoke-json', smoked.json);
    if (!config.dryRun) await record.afterSmoke(smoked);
  }

  // Read the docs table before promoting: retention must never delete a path it lists.
  // The row edit is tried on it too, so a docs file that cannot be edited stops the run before anything moves.
  let docsTable: DocsTable | undefined;
  if (steps.includes('docs') && !config.dryRun) {
    docsTable = await reporter.group('Read docs table', () => readDocsTable(config, reporter));
  }

  if (steps.includes('promote')) {
    if (!config.dryRun) await record.beforePublish(session!);
    const { promoteImage, promoteSummary } = await import('./publish/promote.js');
    const r = config.remote;
    const stagedPath = result.staged?.stagedPath ?? path.posix.join(r.stagingDir!, r.remoteName!);
    const protectedPaths = docsTable?.listed ?? [];
    const promote = async (label: string, file: Parameters<typeof promoteOptions>[1]) => {
      const promoted = await reporter.group(config.dryRun ? `${label} (dry run)` : label, () => promoteImage({ ...promoteOptions(config, file, protectedPaths, reporter, signal, runUrl), session }));
      await reporter.summary(promoteSummary(promoted));
      return promoted;
    };
    // The .sqsh goes live first: a failure there leaves the published SIF (which the docs list) as it was.
    if (config.build.formats.includes('sqsh')) {
      const built = record.record?.sqsh;
      const sqshPromoted = await promote('Promote the .sqsh', {
        stagedPath: result.stagedSqsh?.stagedPath ?? path.posix.join(r.stagingDir!, sqshName(config)),
        stagedSha256: result.stagedSqsh?.sha256 ?? built?.sha256,
        stagedSize: result.sqsh?.size ?? built?.size,
        remoteName: sqshName(config),
        alias: config.publish.alias && sqshRemoteName(config.publish.alias),
        retention: false,
      });
      if (!config.dryRun) {
        result.promotedSqsh = sqshPromoted;
        reporter.setOutput('sqsh-remote-path', sqshPromoted.remotePath);
      }
    }
    const promoted = await promote('Promote', {
      stagedPath,
      stagedSha256: result.staged?.sha256 ?? config.publish.stagedSha256,
      stagedSize: result.build?.size,
      remoteName: r.remoteName!,
      alias: config.publish.alias,
    });
    if (!config.dryRun) {
      result.promoted = promoted;
      reporter.setOutput('remote-path', promoted.remotePath);
      reporter.setOutput('publish-operation', promoted.operation);
      reporter.setOutput('deleted', promoted.deleted.join('\n'));
    }
  }

  if (steps.includes('docs') && docsTable && result.promoted) {
    const table = docsTable;
    result.docs = await reporter.group('Docs pull request', () => openDocsPullRequest(config, table, result, reporter, runUrl, record.record));
    reporter.setOutput('pr-url', result.docs.url ?? '');
    reporter.setOutput('pr-number', result.docs.number ? String(result.docs.number) : '');
    reporter.setOutput('pr-operation', result.docs.operation);
  }
  if (result.promoted) await record.afterPublish(session!, result.promoted.remotePath, result.docs?.url);
  return result;
}

/** The .sqsh a stage job uploads beside the given SIF, which an earlier build job made. */
function sqshImage(sif: string): string {
  const sqsh = sqshPathFor(sif);
  if (!existsSync(sqsh)) throw new StageInputError('formats', `sqsh: ${sqsh} not found beside the image ${sif} (build it with formats: sif,sqsh)`);
  return sqsh;
}


function requireImage(config: Config): string {
  if (!config.image) throw new StageInputError('image', 'required: the image file to upload (or run the build stage first)');
  return config.image;
}

/** On the cluster's runner the staged image is a local path on the shared file system. */
function smokeImage(config: Config): string {
  if (config.image) return config.image;
  const { stagingDir, remoteName } = config.remote;
  const staged = stagingDir && remoteName ? path.join(stagingDir, remoteName) : undefined;
  if (staged && existsSync(staged)) return staged;
  throw new StageInputError('image', `required: the image to smoke-test${staged ? ` (the staged image ${staged} is not on this machine)` : ''}`);
}

/** The image currently published is the default baseline, when this runner sees the cluster's file system. */
function baselineImage(config: Config, reporter: Reporter): string | undefined {
  const given = config.smoke.baseline;
  if (given === 'none') return undefined;
  if (given) {
    if (!existsSync(given)) throw new StageInputError('baseline', `file not found: ${given}`);
    return given;
  }
  const { remoteDir, remoteName } = config.remote;
  const live = remoteDir && remoteName ? path.join(remoteDir, remoteName) : undefined;
  if (live && existsSync(live)) return live;
  reporter.info(`no baseline: ${live ? `nothing published at ${live} yet, or not visible from this machine` : 'set baseline, or remote-dir and name'}; the new image is measured alone`);
  return undefined;
}

/** The configured column headers, with the English ones as fallbacks for the default Chinese headers. */
interface DocsTable {
  /** Paths the table lists, which retention keeps. */
  listed: string[];
  /** The edit that points the software's row at the published path. */
  row: import('./docs/table.js').TableEditSpec;
  /** What the row said before, for the PR body. */
  oldPath?: string;
  /** The edit of the row's .sqsh column (`table-sqsh-column`), when there is one. */
  sqshRow?: import('./docs/table.js').TableEditSpec;
}

async function readDocsTable(config: Config, reporter: Reporter): Promise<DocsTable> {
  const { checkDocsAccess, readRepositoryFile } = await import('./docs/docs-file.js');
  const { editTable, listedValues, syntaxOf, tableColumns } = await import('./docs/table.js');
  const columns = tableColumns(config.docs.keyColumn, config.docs.valueColumn);
  const d = config.docs;
  const text = await readRepositoryFile({ token: d.token!, apiUrl: d.apiUrl, repo: d.repo!, path: d.file!, base: d.base, log: (l: string) => reporter.info(l) });
  // Before promotion: a token that cannot push the branch or open the PR would otherwise fail after the image is live.
  await checkDocsAccess({ token: d.token!, apiUrl: d.apiUrl, repo: d.repo!, base: d.base, log: (l: string) => reporter.info(l) });
  const syntax = syntaxOf(d.file!);
  const sqshColumns = d.sqshColumn && config.build.formats.includes('sqsh') ? { keyColumns: columns.keyColumns, valueColumns: [d.sqshColumn] } : undefined;
  const listed = [...listedValues(text, { ...columns, syntax }), ...(sqshColumns ? listedValues(text, { ...sqshColumns, syntax }) : [])];
  reporter.info(`${d.repo}:${d.file} lists ${listed.length} image(s); retention keeps them`);
  const row = {
    key: d.software ?? config.name!,
    value: path.posix.join(config.remote.remoteDir!, config.remote.remoteName!),
    ...columns,
    syntax,
    file: d.file,
  };
  const sqshRow = sqshColumns && { ...row, ...sqshColumns, value: path.posix.join(config.remote.remoteDir!, sqshName(config)) };
  const edited = editTable(text, row);
  if (sqshRow) editTable(edited.text, sqshRow);
  return { listed, row, sqshRow, oldPath: edited.oldValue };
}

async function openDocsPullRequest(config: Config, table: DocsTable, result: PipelineResult, reporter: Reporter, runUrl?: string, record?: RunRecord) {
  const { openOrUpdatePullRequest } = await import('./docs/pull-request.js');
  const { editTable } = await import('./docs/table.js');
  const { prBody } = await import('./docs/pr-body.js');
  const d = config.docs;
  const { key: software, value: remotePath } = table.row;
  const title = d.title ?? `Update ${software} image to ${config.remote.remoteName}`;
  return openOrUpdatePullRequest({
    token: d.token!,
    apiUrl: d.apiUrl,
    repo: d.repo!,
    path: d.file!,
    base: d.base,
    branch: d.branch ?? `build-image/${(config.name ?? software).toLowerCase().replace(/[^a-z0-9._-]+/g, '-')}`,
    title,
    commitMessage: title,
    labels: d.labels,
    reviewers: d.reviewers,
    draft: d.draft,
    body: prBody({
      software,
      oldPath: table.oldPath,
      newPath: remotePath,
      ...(record ? recordProvenance(record) : await imageProvenance(config, result)),
      sqsh: result.promotedSqsh && { path: result.promotedSqsh.remotePath, sha256: result.stagedSqsh?.sha256 ?? result.sqsh?.sha256 ?? record?.sqsh?.sha256 },
      smokeMarkdown: result.smoke?.markdown ?? record?.smoke?.markdown,
      runUrl: record?.runUrl ?? runUrl,
    }),
    edit: (content: string) => {
      const edited = editTable(content, table.row).text;
      return table.sqshRow ? editTable(edited, table.sqshRow).text : edited;
    },
    log: (line: string) => reporter.info(line),
  });
}

/** What the PR body says about the image, from the run's provenance record (this run's, or the one a build job staged). */
function recordProvenance(record: RunRecord) {
  return { sha256: record.image.sha256, size: record.image.size, sourceUri: record.source.uri, sourceDigest: record.source.digest, buildKey: record.buildKey };
}

/** What the PR body says about the image: from this run's build, or read from the image file. */
async function imageProvenance(config: Config, result: PipelineResult) {
  if (result.build) {
    const b = result.build;
    return { sha256: b.sha256, size: b.size, sourceUri: b.sourceUri, sourceDigest: b.sourceDigest, buildKey: b.buildKey };
  }
  if (config.image && existsSync(config.image)) {
    const info = await readSifFile(config.image);
    const { size } = await stat(config.image);
    return {
      sha256: result.staged?.sha256 ?? (await sha256File(config.image)),
      size,
      sourceUri: info.labels[LABELS.sourceUri],
      sourceDigest: info.labels[LABELS.sourceDigest],
      buildKey: info.labels[LABELS.buildKey],
    };
  }
  return { sha256: result.staged?.sha256 };
}

/** Aborts on SIGINT/SIGTERM (a cancelled workflow), so stages can stop their children and clean up. */
export function cancellationSignal(reporter?: Reporter): AbortSignal {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) {
      // A second signal must not skip the cleanup the first one started (locks, jobs, partial files).
      reporter?.warning(`received ${name} again: still cleaning up (send SIGKILL to stop at once, leaving locks to go stale)`);
      return;
    }
    controller.abort(new CancelledError(name));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return controller.signal;
}

/** The run was cancelled by a signal; the exit status follows the shell's 128 + signal number. */
export class CancelledError extends UserError {
  readonly exitCode: number;
  constructor(readonly signalName: NodeJS.Signals) {
    super(`cancelled (${signalName})`);
    this.name = 'CancelledError';
    this.exitCode = signalName === 'SIGINT' ? 130 : 143;
  }
}
