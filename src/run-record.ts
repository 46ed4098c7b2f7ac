// Keeps the run's provenance record (src/publish/record.ts) as the pipeline goes: started from the build, staged
// with the image, completed by the smoke test, read back by a separate publish job, and placed beside the live
// image with the remote path and the PR URL. The `provenance` output is the local file's path.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildResult } from './build/build.js';
import type { BuildContext } from './build/provenance.js';
import type { Config } from './config/config.js';
import type { Reporter } from './report/reporter.js';
import { SftpSession } from './publish/session.js';
import { isRunRecord, putRecord, readRemoteRecord, recordFromBuild, recordName, recordSummary, writeLocalRecord, type RunRecord } from './publish/record.js';

export class RecordKeeper {
  record?: RunRecord;
  private localFile?: string;

  constructor(
    private readonly config: Config,
    private readonly reporter: Reporter,
    private readonly context: BuildContext,
  ) {}

  private get name(): string | undefined {
    return this.config.remote.remoteName ? recordName(this.config.remote.remoteName) : undefined;
  }

  /** Beside the built image: `pytorch.sif` → `pytorch.provenance.json`. */
  async afterBuild(build: BuildResult, sqsh?: { sha256: string; size: number }): Promise<void> {
    if (build.dryRun || build.skipped) return;
    this.record = { ...recordFromBuild(build, this.context), ...(sqsh ? { sqsh: { sha256: sqsh.sha256, size: sqsh.size } } : {}) };
    this.localFile = path.join(path.dirname(build.image), recordName(path.basename(build.image)));
    await this.save();
  }

  /**
   * Beside the staged image, for the jobs that follow on other runners. Over the job's publish `session` when it
   * promotes too (`all`); a build-and-stage job opens a short connection of its own (the stage's are closed by now).
   */
  async afterStage(session?: SftpSession): Promise<void> {
    const { sftp, stagingDir } = this.config.remote;
    if (!this.record || !sftp || !stagingDir || !this.name) return;
    const own = session ? undefined : new SftpSession(sftp, { reporter: this.reporter });
    try {
      await putRecord(session ?? own!, stagingDir, this.name, this.record);
    } finally {
      await own?.end();
    }
  }

  /** The figures join the record; a smoke job on the cluster updates the staged record it sees on the shared file system. */
  async afterSmoke(smoke: { json: string; markdown: string }): Promise<void> {
    const figures = { json: JSON.parse(smoke.json) as unknown, markdown: smoke.markdown };
    if (!this.record) {
      const { stagingDir } = this.config.remote;
      const staged = stagingDir && this.name ? path.join(stagingDir, this.name) : undefined;
      if (!staged || !existsSync(staged)) return;
      const parsed = JSON.parse(await readFile(staged, 'utf8').catch(() => 'null')) as unknown;
      if (!isRunRecord(parsed)) return;
      this.record = parsed;
      this.localFile = staged;
    }
    this.record.smoke = figures;
    await this.save();
  }

  /** A separate publish job starts from the record the build (and smoke) jobs staged, read over the job's connection. */
  async beforePublish(session: SftpSession): Promise<void> {
    const { stagingDir } = this.config.remote;
    if (this.record || !stagingDir || !this.name) return;
    this.record = await readRemoteRecord(session, stagingDir, this.name, this.reporter);
    if (!this.record) {
      this.reporter.info(`no provenance record staged at ${path.posix.join(stagingDir, this.name)}: the PR and summary carry what the image's labels say`);
      return;
    }
    // No image on this runner: the job's temporary directory on Actions, the working directory elsewhere.
    this.localFile = path.resolve(process.env.RUNNER_TEMP ?? '.', this.name);
    this.reporter.info(`provenance record of ${this.record.runUrl ?? 'the build job'} read from ${path.posix.join(stagingDir, this.name)}`);
  }

  /** After promotion (and the PR): the record goes beside the live image over the job's connection, and the summary shows it. */
  async afterPublish(session: SftpSession, remotePath: string, prUrl?: string): Promise<void> {
    const { stagingDir, remoteDir } = this.config.remote;
    if (!this.record || !remoteDir || !this.name) return;
    this.record.remotePath = remotePath;
    if (prUrl) this.record.prUrl = prUrl;
    await this.save();
    const placed = await putRecord(session, remoteDir, this.name, this.record, { removeFrom: stagingDir });
    this.reporter.info(`provenance record: ${placed}`);
    await this.reporter.summary(recordSummary(this.record));
  }

  private async save(): Promise<void> {
    if (!this.record || !this.localFile) return;
    try {
      await writeLocalRecord(this.localFile, this.record);
      this.reporter.setOutput('provenance', this.localFile);
    } catch (error) {
      // A record is evidence, not the product: a read-only staging directory does not fail a smoke-tested run.
      this.reporter.warning(`could not write the provenance record ${this.localFile}: ${(error as Error).message}`);
    }
  }
}
