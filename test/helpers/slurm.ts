// A real single-node Slurm cluster (Debian's slurm-wlm and munge) in a temporary directory: munged as user
// munge with its own key and socket, slurmctld and slurmd in the foreground on free loopback ports, a `dgx2`
// partition whose node has two "GPUs" (character devices made with mknod) and a default `small` partition.
// Client commands reach it through SLURM_CONF in `env`. `stop()` cancels every job and ends all three daemons.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from './registry.js';
import { requireTools, tempDir } from './tools.js';

export interface Slurm {
  /** Environment for client commands (srun, sbatch, squeue, scancel, scontrol): SLURM_CONF set. */
  env: NodeJS.ProcessEnv;
  dir: string;
  nodeName: string;
  /** Job ids squeue lists now. */
  queue(): string[];
  /** Stops slurmctld (jobs keep running on slurmd), as a controller outage does. */
  stopController(): Promise<void>;
  /** Starts slurmctld again from its saved state and waits until it answers. */
  startController(): Promise<void>;
  /** The daemons' logs, for failure messages. */
  logs(): string;
  stop(): Promise<void>;
}

function ids(name: string): { uid: number; gid: number } {
  const r = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const g = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (r.status !== 0 || g.status !== 0) throw new Error(`user ${name} is missing: install munge (scripts/provision.sh)`);
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) };
}

async function waitFor(what: string, check: () => boolean, children: ChildProcess[], logs: () => string, ms = 30_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    const dead = children.find((c) => c.exitCode !== null || c.signalCode !== null);
    if (dead) throw new Error(`${dead.spawnargs[0]} exited (${dead.exitCode ?? dead.signalCode}) while waiting for ${what}:\n${logs()}`);
    if (check()) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}:\n${logs()}`);
}

/** Where scripts/provision-enroot.sh installs the pyxis SPANK plugin. */
export const PYXIS_PLUGIN = '/usr/local/lib/build-image/pyxis/spank_pyxis.so';

export interface SlurmOptions {
  /**
   * Load pyxis (srun --container-image=...) with enroot's paths private to this cluster (ENROOT_* in `env`, which
   * jobs inherit). Built by scripts/provision-enroot.sh; without it the start fails.
   */
  pyxis?: boolean;
}

export async function startSlurm(options: SlurmOptions = {}): Promise<Slurm> {
  requireTools('munged', 'slurmctld', 'slurmd', 'srun', 'sbatch', 'squeue', 'scancel', 'scontrol', 'sinfo');
  if (options.pyxis) {
    requireTools('enroot');
    if (!existsSync(PYXIS_PLUGIN)) throw new Error(`pyxis is not installed at ${PYXIS_PLUGIN}: run scripts/provision-enroot.sh`);
  }
  if (process.getuid?.() !== 0) throw new Error('the Slurm test cluster needs root (slurmd runs jobs as their user)');
  const munge = ids('munge');
  const { dir, cleanup } = tempDir('bi-slurm-');
  const nodeName = os.hostname();
  const children: ChildProcess[] = [];
  const output: Record<string, string> = {};
  const log = (file: string): string => {
    try {
      return readFileSync(path.join(dir, file), 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  };
  const logs = (): string =>
    ['munged.log', 'slurmctld.log', 'slurmd.log'].map((f) => `--- ${f}\n${log(f)}`).join('\n') +
    Object.entries(output).map(([k, v]) => `\n--- ${k} output\n${v.slice(-2000)}`).join('');
  const start = (name: string, command: string, args: string[], options: { uid?: number; gid?: number; env?: NodeJS.ProcessEnv } = {}): ChildProcess => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    output[name] = '';
    child.stdout!.on('data', (d) => (output[name] += d));
    child.stderr!.on('data', (d) => (output[name] += d));
    children.push(child);
    return child;
  };

  // munged refuses a key that others can read, and a socket directory it does not own.
  const mungeDir = path.join(dir, 'munge');
  mkdirSync(mungeDir, { mode: 0o755 });
  const key = path.join(mungeDir, 'munge.key');
  writeFileSync(key, randomBytes(128), { mode: 0o400 });
  for (const p of [mungeDir, key]) chownSync(p, munge.uid, munge.gid);
  chmodSync(dir, 0o755);
  const socket = path.join(mungeDir, 'munge.socket');
  start('munged', '/usr/sbin/munged', [
    '--foreground', '--force', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${mungeDir}/munged.pid`,
    `--log-file=${dir}/munged.log`, `--seed-file=${mungeDir}/munged.seed`,
  ], { uid: munge.uid, gid: munge.gid });
  await waitFor('munged', () => spawnSync('munge', ['-n', '-S', socket]).status === 0, children, logs);

  // Two fake GPUs: slurmd only needs device files to stat; without File= it drops the gres and drains the node.
  const devDir = path.join(dir, 'dev');
  mkdirSync(devDir);
  for (const i of [0, 1]) {
    const r = spawnSync('mknod', [path.join(devDir, `nvidia${i}`), 'c', '195', String(i)], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mknod failed: ${r.stderr}`);
  }
  const [ctldPort, slurmdPort] = [await freePort(), await freePort()];
  for (const d of ['state', 'spool']) mkdirSync(path.join(dir, d));
  const conf = path.join(dir, 'slurm.conf');
  writeFileSync(
    conf,
    [
      'ClusterName=buildimage',
      `SlurmctldHost=${nodeName}(127.0.0.1)`,
      `SlurmctldPort=${ctldPort}`,
      `SlurmdPort=${slurmdPort}`,
      'AuthType=auth/munge',
      'CredType=cred/munge',
      `AuthInfo=socket=${socket}`,
      'SlurmUser=root',
      'SlurmdUser=root',
      `StateSaveLocation=${dir}/state`,
      `SlurmdSpoolDir=${dir}/spool`,
      `SlurmctldPidFile=${dir}/slurmctld.pid`,
      `SlurmdPidFile=${dir}/slurmd.pid`,
      `SlurmctldLogFile=${dir}/slurmctld.log`,
      `SlurmdLogFile=${dir}/slurmd.log`,
      'ProctrackType=proctrack/linuxproc',
      'TaskPlugin=task/none',
      'SelectType=select/cons_tres',
      'SelectTypeParameters=CR_Core',
      'GresTypes=gpu',
      'SchedulerType=sched/builtin',
      'AccountingStorageType=accounting_storage/none',
      'JobAcctGatherType=jobacct_gather/none',
      'JobCompType=jobcomp/none',
      'MpiDefault=none',
      'ReturnToService=2',
      'KillWait=2',
      'MinJobAge=300',
      'SlurmctldTimeout=30',
      'SlurmdTimeout=30',
      `NodeName=${nodeName} NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 Gres=gpu:2 State=UNKNOWN`,
      `PartitionName=small Nodes=${nodeName} Default=YES MaxTime=INFINITE State=UP`,
      `PartitionName=dgx2 Nodes=${nodeName} Default=NO MaxTime=INFINITE State=UP`,
      ...(options.pyxis ? [`PlugStackConfig=${dir}/plugstack.conf`] : []),
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'gres.conf'), `NodeName=${nodeName} Name=gpu File=${devDir}/nvidia[0-1]\n`);
  const env: NodeJS.ProcessEnv = { ...process.env, SLURM_CONF: conf };
  if (options.pyxis) {
    const enrootDir = path.join(dir, 'enroot');
    for (const d of ['runtime', 'data', 'cache', 'tmp', 'config', 'pyxis']) mkdirSync(path.join(enrootDir, d), { recursive: true });
    writeFileSync(path.join(dir, 'plugstack.conf'), `required ${PYXIS_PLUGIN} runtime_path=${enrootDir}/pyxis\n`);
    Object.assign(env, {
      ENROOT_RUNTIME_PATH: `${enrootDir}/runtime`, ENROOT_DATA_PATH: `${enrootDir}/data`, ENROOT_CACHE_PATH: `${enrootDir}/cache`,
      ENROOT_TEMP_PATH: `${enrootDir}/tmp`, ENROOT_CONFIG_PATH: `${enrootDir}/config`,
    });
  }
  let ctld = start('slurmctld', '/usr/sbin/slurmctld', ['-D', '-i', '-f', conf], { env });
  await waitFor('slurmctld', () => spawnSync('scontrol', ['ping'], { env, encoding: 'utf8' }).stdout.includes('UP'), children, logs);
  start('slurmd', '/usr/sbin/slurmd', ['-D', '-f', conf, '-N', nodeName], { env });
  const state = (): string => spawnSync('sinfo', ['-h', '-n', nodeName, '-o', '%T'], { env, encoding: 'utf8' }).stdout.trim();
  await waitFor('the node to be idle', () => state().split('\n').every((s) => s === 'idle'), children, () => `sinfo: ${state()}\n${logs()}`);

  const queue = (): string[] =>
    spawnSync('squeue', ['-h', '-o', '%i'], { env, encoding: 'utf8' }).stdout.split('\n').map((s) => s.trim()).filter(Boolean);
  return {
    env,
    dir,
    nodeName,
    queue,
    logs,
    async stopController() {
      const exited = new Promise((r) => ctld.once('exit', r));
      ctld.kill('SIGTERM');
      await exited;
    },
    async startController() {
      ctld = start('slurmctld', '/usr/sbin/slurmctld', ['-D', '-i', '-f', conf], { env });
      await waitFor('slurmctld', () => spawnSync('scontrol', ['ping'], { env, encoding: 'utf8' }).stdout.includes('UP'), [ctld], logs);
    },
    async stop() {
      spawnSync('scancel', ['--full', '-u', 'root'], { env });
      const until = Date.now() + 20_000;
      while (queue().length > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
      for (const child of [...children].reverse()) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        child.kill('SIGTERM');
        let timer: NodeJS.Timeout | undefined;
        const exited = await Promise.race([
          new Promise((r) => child.once('exit', () => r(true))),
          new Promise((r) => (timer = setTimeout(() => r(false), 10_000))),
        ]);
        clearTimeout(timer);
        if (!exited) child.kill('SIGKILL');
      }
      for (const child of children) {
        child.stdout?.destroy();
        child.stderr?.destroy();
      }
      cleanup();
    },
  };
}
