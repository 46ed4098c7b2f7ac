// `builder: u2cb`: the SIF is built on the centre's U2CB build service, for runners without root. The recipe (the
// user's definition pinned to its base digests with the provenance labels added, or the one made for a source) is
// submitted with `u2cb defcreate`, `u2cb list` is polled until the image is there (within build-timeout),
// `u2cb download` fetches it (as `./NAME.simg`, in a private directory beside the output) and `u2cb delete` removes
// it from the service, whatever the outcome. Then the usual SIF checks, the build key among them.
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { formatDuration } from '../report/summary.js';
import { runProcess } from '../util/process.js';
import { BuildError, verifySif, type BuildResult } from './build.js';
import { parseDefinition } from './definition.js';
import { Deadline, finish, type ElsewhereJob, planned, step, tempBase, workspace } from './elsewhere.js';
import { errorLines } from './failure.js';
import { substitute } from './recipe.js';

/** A name the service accepts (letters and digits, starting with a letter), unique to this run. */
export function serviceName(pid = process.pid): string {
  return `bi${pid}x${randomBytes(4).toString('hex')}`;
}

/** `u2cb list` prints the names on one line. */
export function listedNames(stdout: string): string[] {
  return stdout.split(/\s+/).filter((n) => n !== '');
}

/** The service sees neither this machine's files nor build arguments: the recipe it gets has the values in place. */
export function serviceRecipe(recipe: string, buildArgs: Record<string, string>, userText: string | undefined, shown: string): string {
  const files = userText === undefined ? undefined : parseDefinition(userText).stages.flatMap((s) => s.sections).find((s) => s.name === 'files' && s.body.trim() !== '');
  if (files) throw new BuildError(`definition ${shown}:${files.line}: %files copies files from this machine, which the U2CB service does not see; download them in %post, or use builder apptainer`);
  return substitute(recipe, buildArgs, {});
}

const POLL_MS = [500, 1000, 2000, 5000];

export async function buildWithU2cb(job: ElsewhereJob): Promise<BuildResult> {
  const { config, reporter } = job;
  const env = job.options.env ?? process.env;
  const u2cb = job.builder.path;
  const name = serviceName();
  const userText = config.definition ? await readFile(config.definition, 'utf8') : undefined;
  const recipe = serviceRecipe(job.plan.recipe, job.plan.buildArgs, userText, config.definition ?? '');
  if (config.dryRun) {
    return planned(job, [[u2cb, 'defcreate', '-n', name, '-d', `${name}.def`], [u2cb, 'list'], [u2cb, 'download', '-n', name], [u2cb, 'delete', '-n', name]]);
  }
  const ws = await workspace(job, tempBase(job, env), 'u2cb');
  const deadline = new Deadline(job);
  let submitted = false;
  try {
    const definition = path.join(ws.dir, `${name}.def`);
    await writeFile(definition, recipe);
    await reporter.group('Build on the U2CB service', async () => {
      submitted = true; // from here on, whatever happens, the service is asked to delete it
      const run = await step(job, deadline, u2cb, ['defcreate', '-n', name, '-d', definition], { env, cwd: ws.dir });
      deadline.check(`${name} was deleted from the U2CB service`);
      if (run.code !== 0) throw new BuildError(`u2cb defcreate failed (exit ${run.code}):\n${errorLines(run.tail).join('\n')}`);
      await waitListed(job, deadline, u2cb, name, env);
    });
    // Downloaded into the partial directory beside the output, so that the final rename stays on one file system.
    await mkdir(ws.partial);
    const image = path.join(ws.partial, `${name}.simg`);
    await reporter.group('Download from the U2CB service', async () => {
      const run = await step(job, deadline, u2cb, ['download', '-n', name], { env, cwd: ws.partial });
      deadline.check(`${name} was deleted from the U2CB service`);
      if (run.code !== 0) throw new BuildError(`u2cb download -n ${name} failed (exit ${run.code}):\n${errorLines(run.tail).join('\n')}`);
    });
    const verified = await reporter.group('Verify image', () => verifySif(image, job.builder, job.plan.buildKey, reporter));
    return await finish(job, image, [u2cb, 'defcreate', '-n', name, '-d', definition], verified.primary?.compression);
  } finally {
    deadline.end();
    if (submitted) await remove(job, u2cb, name, env);
    await ws.release();
  }
}

/** Polls `u2cb list` until the name is there; the deadline (build-timeout, cancellation) ends the wait. */
async function waitListed(job: ElsewhereJob, deadline: Deadline, u2cb: string, name: string, env: NodeJS.ProcessEnv): Promise<void> {
  job.reporter.info(`waiting for the service to list ${name} (u2cb list)`);
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    const run = await runProcess(u2cb, ['list'], { env, signal: deadline.signal, tailLines: 10 });
    if (deadline.signal.aborted) break;
    if (run.code !== 0) throw new BuildError(`u2cb list failed (exit ${run.code}):\n${run.tail.join('\n')}`);
    if (listedNames(run.stdout).includes(name)) {
      job.reporter.info(`${name} is ready after ${formatDuration((Date.now() - started) / 1000)}`);
      return;
    }
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, POLL_MS[Math.min(attempt, POLL_MS.length - 1)]);
      deadline.signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
    });
    if (deadline.signal.aborted) break;
  }
  deadline.check(`the U2CB service had not listed ${name} (its build failed or is still running); it was deleted from the service`);
}

/** `u2cb delete`; a failure is a warning only while the service still lists the name (nothing there is fine). */
async function remove(job: ElsewhereJob, u2cb: string, name: string, env: NodeJS.ProcessEnv): Promise<void> {
  job.reporter.info(`$ u2cb delete -n ${name}`);
  const run = await runProcess(u2cb, ['delete', '-n', name], { env, onLine: (line) => job.reporter.info(line), tailLines: 10 });
  if (run.code === 0) return;
  const list = await runProcess(u2cb, ['list'], { env });
  if (list.code !== 0 || listedNames(list.stdout).includes(name)) {
    job.reporter.warning(`u2cb delete -n ${name} failed (exit ${run.code}): ${run.tail.join(' ')}; delete it on the service yourself`);
  }
}
