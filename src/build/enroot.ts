// `builder: enroot`: the image is imported with `enroot import` (the source, or a definition's `From:`, pinned to
// the digest resolved for the build key), unpacked into a container with `enroot create`, given the definition's
// %post (run by `enroot start --root --rw`), %environment (→ /etc/environment), %runscript (→ /etc/rc) and the
// labels (/.singularity.d/labels.json, as in a SIF), and packed again with `enroot export`. Every container it
// created is removed (`enroot remove -f`) whatever the outcome. enroot's paths are private to the run unless the
// environment sets them; registry credentials go in a private `.credentials` file (enroot reads netrc), never argv.
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, open, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { BuildConfig } from '../config/config.js';
import { runProcess } from '../util/process.js';
import { enrootContainer, hold } from '../util/resources.js';
import { BuildError, type BuildResult } from './result.js';
import { parseDefinition, type Section } from './definition.js';
import { Deadline, finish, type ElsewhereJob, planned, step, tempBase, workspace } from './elsewhere.js';
import { errorLines, locateScriptletFailure } from './failure.js';
import { LABELS } from './provenance.js';
import { substitute } from './recipe.js';
import { parseImageRef, type ImageRef } from './source.js';

/** Sections builder enroot applies; the others need apptainer (host files, tests, apps). */
const APPLIED = new Set(['post', 'environment', 'runscript', 'labels', 'help', 'arguments']);
const PATHS = ['ENROOT_DATA_PATH', 'ENROOT_CACHE_PATH', 'ENROOT_RUNTIME_PATH', 'ENROOT_TEMP_PATH'] as const;

/** What the recipe asks of enroot: the pinned base and the section bodies, build arguments substituted. */
export interface EnrootRecipe {
  base: ImageRef;
  post?: string;
  environment?: string;
  runscript?: string;
  labels: Record<string, string>;
}

/**
 * Reads the recipe (the user's definition pinned and labelled, or the one made for a source). The user's own file
 * is checked for what enroot cannot apply, so the error names their line, not the recipe's.
 */
export function enrootRecipe(recipe: string, config: BuildConfig, userText?: string): EnrootRecipe {
  const shown = config.definition ?? 'the recipe';
  if (userText !== undefined) {
    const user = parseDefinition(userText);
    if (user.stages.length > 1) throw new BuildError(`definition ${shown}:${user.stages[1].line}: builder enroot builds single-stage definitions only; use builder apptainer for a multi-stage build`);
    const stage = user.stages[0];
    if (stage && stage.bootstrap !== 'docker') {
      throw new BuildError(`definition ${shown}:${stage.line}: builder enroot imports from a registry (Bootstrap: docker); got Bootstrap: ${stage.bootstrap ?? 'none'}`);
    }
    const other = stage?.sections.find((s) => !APPLIED.has(s.name));
    if (other) {
      throw new BuildError(`definition ${shown}:${other.line}: %${other.name} is not applied by builder enroot (it applies %post, %environment, %runscript and %labels); use builder apptainer for this definition`);
    }
  }
  const stage = parseDefinition(recipe).stages[0];
  const from = stage?.headers.find((h) => h.key.toLowerCase() === 'from')?.value;
  if (!stage || !from) throw new BuildError(`definition ${shown}: no From: to import`);
  const body = (name: string): string | undefined => {
    const found: Section | undefined = stage.sections.filter((s) => s.name === name && !s.app).pop();
    return found && found.body.trim() !== '' ? substitute(found.body, config.buildArgs, stage.argumentsDefaults) : undefined;
  };
  const labels: Record<string, string> = {};
  for (const line of (body('labels') ?? '').split('\n')) {
    const m = /^\s*(\S+)\s+(.*?)\s*$/.exec(line);
    if (m && !m[1].startsWith('#')) labels[m[1]] = m[2];
  }
  return { base: parseImageRef(from.replace(/^docker:\/\//, '')), post: body('post'), environment: body('environment'), runscript: body('runscript'), labels };
}

/** enroot's URI for a pinned reference: `docker://[USER@]REGISTRY/REPOSITORY@DIGEST` (enroot 3.5+ reads digests). */
export function enrootUri(ref: ImageRef, user?: string): string {
  return `docker://${user ? `${user}@` : ''}${ref.registry}/${ref.repository}${ref.digest ? `@${ref.digest}` : `:${ref.tag ?? 'latest'}`}`;
}

/**
 * The `.credentials` lines for a registry: its host, and the token services the big registries send clients to
 * (enroot's curl asks the realm host with the same netrc). enroot's parser runs a password that starts with `$`
 * through the shell, so such a password is read from a file instead (the command names the path, not the secret).
 */
export function credentialLines(registry: string, username: string, password: string, passwordFile: string): string[] {
  if (/\s/.test(password)) throw new BuildError('registry-password: contains white space, which enroot\'s .credentials file (netrc) cannot carry; use builder apptainer');
  if (/\s/.test(username)) throw new BuildError('registry-username: contains white space, which enroot\'s .credentials file (netrc) cannot carry');
  const host = registry.replace(/:\d+$/, '');
  const hosts = [host, ...(host === 'registry-1.docker.io' ? ['auth.docker.io'] : host === 'nvcr.io' ? ['authn.nvidia.com'] : [])];
  // enroot pastes the line's rest into `sh -c "echo REST"`: `$(:)-n` starts it with `$` and makes that `echo -n`
  // (curl wants the password on the `machine` line), then `cat` prints the file's bytes unsplit and unglobbed.
  const secret = password.startsWith('$') ? `$(:)-n;cat '${passwordFile}';echo` : password;
  return hosts.map((h) => `machine ${h} login ${username} password ${secret}`);
}

/** enroot's environment: private paths (unless set), plain HTTP for registry-insecure, the private config. */
export async function enrootEnvironment(env: NodeJS.ProcessEnv, dir: string, config: BuildConfig, registry: string): Promise<NodeJS.ProcessEnv> {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of PATHS) {
    if (env[name]) continue;
    out[name] = path.join(dir, name.slice('ENROOT_'.length, -'_PATH'.length).toLowerCase());
    await mkdir(out[name]!, { recursive: true, mode: 0o700 });
  }
  if (config.registryInsecure) out.ENROOT_ALLOW_HTTP = 'yes';
  if (config.registry) {
    const conf = path.join(dir, 'config');
    await mkdir(conf, { mode: 0o700 });
    const passwordFile = path.join(conf, '.password');
    const lines = credentialLines(registry, config.registry.username, config.registry.password, passwordFile);
    if (config.registry.password.startsWith('$')) await writeFile(passwordFile, config.registry.password, { mode: 0o600 });
    await writeFile(path.join(conf, '.credentials'), `${lines.join('\n')}\n`, { mode: 0o600 });
    out.ENROOT_CONFIG_PATH = conf;
  }
  return out;
}

export async function buildWithEnroot(job: ElsewhereJob): Promise<BuildResult> {
  const { config, reporter } = job;
  const env = job.options.env ?? process.env;
  const userText = config.definition ? await readFile(config.definition, 'utf8') : undefined;
  const recipe = enrootRecipe(job.plan.recipe, config, userText);
  const name = `build-image-${process.pid}-${randomBytes(3).toString('hex')}`;
  const uri = enrootUri(recipe.base, config.registry?.username);
  const enroot = job.builder.path;
  if (config.dryRun) {
    const settings = [...(config.registryInsecure ? ['ENROOT_ALLOW_HTTP=yes'] : []), ...(config.registry ? ['ENROOT_CONFIG_PATH=(private, with .credentials)'] : [])];
    reporter.info(`enroot paths: ${PATHS.map((p) => (env[p] ? `${p}=${env[p]}` : `${p}=(private to the run)`)).join(', ')}${settings.length ? `; ${settings.join(', ')}` : ''}`);
    return planned(job, [
      [enroot, 'import', '-o', 'BASE.sqsh', uri],
      [enroot, 'create', '-n', name, 'BASE.sqsh'],
      ...(recipe.post || recipe.environment ? [[enroot, 'start', '--root', '--rw', '--rc', 'SCRIPTLETS.sh', name]] : []),
      [enroot, 'export', '-o', config.output, name],
      [enroot, 'remove', '-f', name],
    ]);
  }

  const ws = await workspace(job, tempBase(job, env), 'enroot');
  const deadline = new Deadline(job);
  let created = false;
  let unhold: (() => void) | undefined;
  let enrootEnv: NodeJS.ProcessEnv = env;
  try {
    enrootEnv = await enrootEnvironment(env, ws.dir, config, recipe.base.registry);
    if (env.ENROOT_DATA_PATH) await removeStaleContainers(enroot, enrootEnv, job);
    const rootfs = path.join(enrootEnv.ENROOT_DATA_PATH!, name);
    const baseImage = path.join(ws.dir, 'base.sqsh');
    await reporter.group(`Import with enroot`, async () => {
      const run = await step(job, deadline, enroot, ['import', '-o', baseImage, uri], { env: enrootEnv });
      deadline.check('nothing was written to the output');
      if (run.code !== 0) throw new BuildError(`enroot import of ${job.plan.sourceUri} failed (exit ${run.code}):\n${errorLines(run.tail).join('\n')}`);
    });
    await reporter.group('Apply the definition', async () => {
      created = true; // from here on, whatever happens, the container is removed
      // Held too: after a kill -9 the post step removes it, also from a data path the user set (not the workspace's).
      unhold = hold(enrootContainer(name, enrootEnv));
      const made = await step(job, deadline, enroot, ['create', '-n', name, baseImage], { env: enrootEnv });
      deadline.check('the container was removed');
      if (made.code !== 0) throw new BuildError(`enroot create failed (exit ${made.code}):\n${errorLines(made.tail).join('\n')}`);
      await rm(baseImage, { force: true });
      if (recipe.post || recipe.environment) await runScriptlets(job, deadline, { enroot, env: enrootEnv, name, dir: ws.dir, rootfs, recipe, userText });
      if (recipe.runscript) await writeRunscript(rootfs, recipe.runscript);
      await writeProvenance(rootfs, recipe.labels, job.plan.recipe);
    });
    await reporter.group('Export with enroot', async () => {
      const run = await step(job, deadline, enroot, ['export', '-o', ws.partial, name], { env: enrootEnv });
      deadline.check('the container was removed');
      if (run.code !== 0) throw new BuildError(`enroot export failed (exit ${run.code}):\n${errorLines(run.tail).join('\n')}`);
    });
    await reporter.group('Verify image', () => verifySqsh(ws.partial, job.plan.buildKey));
    return await finish(job, ws.partial, [enroot, 'import', uri]);
  } finally {
    deadline.end();
    if (created) {
      const removed = await runProcess(enroot, ['remove', '-f', name], { env: enrootEnv });
      if (removed.code !== 0) reporter.warning(`enroot remove -f ${name} failed (exit ${removed.code}): ${removed.tail.join(' ')}`);
      else unhold?.();
    }
    await ws.release();
  }
}

interface InContainer {
  enroot: string;
  env: NodeJS.ProcessEnv;
  name: string;
  /** The build's private directory (the command script's place). */
  dir: string;
  rootfs: string;
  recipe: EnrootRecipe;
  userText?: string;
}

/** Where the scriptlets are put inside the container while they run. */
const INSIDE = '/.build-image-scriptlets';
const ENVIRONMENT_MARK = 'build-image: sourcing %environment';

/**
 * One `enroot start --root --rw` (each start costs seconds) runs %post as apptainer does (`sh -e -x`), then sources
 * %environment (`set -a`, so plain assignments count too) between two `env` listings: what it set or changed goes
 * to /etc/environment, which enroot and pyxis apply at every start. A failure names the user's line.
 */
async function runScriptlets(job: ElsewhereJob, deadline: Deadline, c: InContainer): Promise<void> {
  const inside = path.join(c.rootfs, INSIDE);
  await mkdir(inside, { recursive: true });
  const rc: string[] = ['set -e'];
  if (c.recipe.post) {
    await writeFile(path.join(inside, 'post.sh'), `${c.recipe.post}\n`);
    rc.push(`/bin/sh -e -x ${INSIDE}/post.sh`);
  }
  if (c.recipe.environment) {
    await writeFile(path.join(inside, 'environment.sh'), `${c.recipe.environment}\n`);
    rc.push(`echo '${ENVIRONMENT_MARK}'`, `env > ${INSIDE}/before`, 'set -a', `. ${INSIDE}/environment.sh`, 'set +a', `env > ${INSIDE}/after`);
  }
  const script = path.join(c.dir, 'scriptlets.sh');
  await writeFile(script, `${rc.join('\n')}\n`);
  if (c.recipe.post) job.reporter.info('Running post scriptlet');
  const run = await step(job, deadline, c.enroot, ['start', '--root', '--rw', '--rc', script, c.name], { env: c.env });
  deadline.check('the container was removed');
  if (run.code !== 0) throw scriptletError(job, run.tail, run.code, c.userText);
  if (c.recipe.environment) await writeEnvironment(job, c.rootfs, inside);
  await rm(inside, { recursive: true, force: true });
}

function scriptletError(job: ElsewhereJob, tail: string[], code: number, userText?: string): BuildError {
  const lines = errorLines(tail);
  if (tail.some((l) => l.trim() === ENVIRONMENT_MARK)) return new BuildError(`%environment failed in the container (${job.config.definition}), exit status ${code}:\n${lines.join('\n')}`);
  const failed = userText !== undefined
    ? locateScriptletFailure([...tail, `while running %post section: exit status ${code}`], ['post'], userText, job.config.definition!)
    : undefined;
  const what = failed?.command === undefined ? '' : ` at \`${failed.command}\``;
  return new BuildError(`%post failed${what} (${failed?.where ?? job.config.definition}), exit status ${code}:\n${lines.join('\n')}`);
}

/** The variables %environment set or changed, in /etc/environment (replacing earlier values of theirs). */
async function writeEnvironment(job: ElsewhereJob, rootfs: string, inside: string): Promise<void> {
  const read = async (file: string) => (await readFile(path.join(inside, file), 'utf8')).split('\n').filter((l) => /^[A-Za-z_][A-Za-z0-9_]*=/.test(l));
  const before = new Set(await read('before'));
  const changed = (await read('after')).filter((l) => !before.has(l) && !/^(?:_|PWD|OLDPWD|SHLVL)=/.test(l));
  const names = changed.map((l) => l.slice(0, l.indexOf('=') + 1));
  const file = path.join(rootfs, 'etc', 'environment');
  const kept = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '' && !names.some((n) => l.startsWith(n)));
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, [...kept, ...changed, ''].join('\n'));
  job.reporter.info(`%environment: ${names.map((n) => n.slice(0, -1)).join(', ') || 'no variable'} written to /etc/environment`);
}

/** /etc/rc per enroot's image format: a command given to `enroot start` runs as is; without one, the runscript. */
async function writeRunscript(rootfs: string, body: string): Promise<void> {
  const file = path.join(rootfs, 'etc', 'rc');
  const imported = await readFile(file, 'utf8').catch(() => '');
  const cd = imported.split('\n').find((l) => /^cd .*\|\| exit 1$/.test(l)) ?? 'cd / && unset OLDPWD || exit 1';
  const lines = ['# Written by build-image from the definition\'s %runscript.', cd, '', 'if [ -s /etc/rc.local ]; then', '    . /etc/rc.local', 'fi', '', 'if [ $# -gt 0 ]; then', '    exec "$@"', 'fi', '', body, ''];
  await writeFile(file, lines.join('\n'));
}

/** The labels and the recipe where apptainer keeps them, so both kinds of image answer the same questions. */
async function writeProvenance(rootfs: string, labels: Record<string, string>, recipe: string): Promise<void> {
  const dir = path.join(rootfs, '.singularity.d');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'labels.json'), `${JSON.stringify(labels, null, 1)}\n`);
  await writeFile(path.join(dir, 'Singularity'), recipe);
  await chmod(path.join(dir, 'labels.json'), 0o644);
}

/** Containers that runs which died (kill -9) left in a data path the user keeps, recognised by the PID in the name. */
async function removeStaleContainers(enroot: string, env: NodeJS.ProcessEnv, job: ElsewhereJob): Promise<void> {
  const list = await runProcess(enroot, ['list'], { env });
  for (const name of list.stdout.split(/\s+/)) {
    const pid = Number(/^build-image-(\d+)-[0-9a-f]+$/.exec(name)?.[1] ?? 0);
    if (!pid || pid === process.pid || isRunning(pid)) continue;
    await runProcess(enroot, ['remove', '-f', name], { env });
    job.reporter.info(`removed enroot container ${name}, left by a build that died (process ${pid})`);
  }
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/** The labels of an enroot image built here (its /.singularity.d/labels.json); empty when it has none. */
export async function readSqshLabels(file: string): Promise<Record<string, string>> {
  const cat = await runProcess('unsquashfs', ['-cat', file, '.singularity.d/labels.json']);
  try {
    return cat.code === 0 ? (JSON.parse(cat.stdout) as Record<string, string>) : {};
  } catch {
    return {};
  }
}

/** A squashfs whose labels carry this build's key. */
async function verifySqsh(file: string, buildKey: string): Promise<void> {
  const handle = await open(file);
  const head = await handle.read(Buffer.alloc(4), 0, 4, 0).then((r) => r.buffer.toString('latin1')).finally(() => handle.close());
  if (head !== 'hsqs') throw new BuildError('enroot export produced no squashfs image');
  if ((await readSqshLabels(file))[LABELS.buildKey] !== buildKey) throw new BuildError(`image verification failed: provenance labels missing from ${file}`);
}
