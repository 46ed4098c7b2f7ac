// Runs a child process with its output streamed line by line, the tail kept for error messages, and a kill on
// abort, so a cancelled workflow never leaves a builder writing behind our back.
import { spawn } from 'node:child_process';
import { LineSplitter } from './lines.js';
import { UserError } from '../user-error.js';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called for each output line as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  /** How many trailing lines of output to keep. */
  tailLines?: number;
  input?: string;
  /** Which stdout lines to keep in `stdout` (default: all). Every line still reaches `onLine` and the tail. */
  keepLine?: (line: string) => boolean;
  /** Longest line kept whole; longer ones are cut and marked. */
  maxLineChars?: number;
  /**
   * Run the command in a process group of its own, ended as a whole on abort and, by a watchdog, when this process
   * dies, so that even `kill -9` of the tool leaves no builder behind.
   */
  ownGroup?: boolean;
  /**
   * Run the command as root through passwordless sudo (`sudo -n`), with only these environment variables kept. The
   * values travel in the environment, never in argv. Stopping it (abort, watchdog) signals the root process group
   * through sudo too, since this user cannot signal root's processes.
   */
  sudo?: { preserveEnv: string[] };
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** The last lines of stdout and stderr together, in arrival order. */
  tail: string[];
}

/**
 * Watches this process from outside: once it is gone (even by `kill -9`), ends the command's process group, SIGTERM
 * then SIGKILL. It exits by itself as soon as the group is gone. A shell loop, because no signal reaches a process
 * when its parent dies unless the child asked for one, and the builder's children cannot be made to.
 */
const WATCHDOG = [
  'parent=$1 group=$2',
  'while kill -0 "$parent" 2>/dev/null && kill -0 -"$group" 2>/dev/null; do sleep 1; done',
  'if kill -0 -"$group" 2>/dev/null; then kill -TERM -"$group"; sleep 5; kill -KILL -"$group" 2>/dev/null; fi',
].join('\n');

function watchGroup(group: number): void {
  spawn('/bin/sh', ['-c', WATCHDOG, 'build-image-watchdog', String(process.pid), String(group)], { detached: true, stdio: 'ignore' }).unref();
}

/** Signals (as root) the process group of root's process `$1` with signal `$2`: the group is read from /proc. */
const SIGNAL_ROOT_GROUP = 'g=$(sed "s/.*) //" /proc/"$1"/stat 2>/dev/null | cut -d" " -f3); [ -n "$g" ] && kill -s "$2" -- "-$g"';

/** The watchdog for a command run through sudo: the same, with the root process's group signalled through sudo. */
const ROOT_WATCHDOG = [
  'parent=$1 pid=$2',
  'while kill -0 "$parent" 2>/dev/null && [ -d /proc/"$pid" ]; do sleep 1; done',
  `if [ -d /proc/"$pid" ]; then sudo -n /bin/sh -c '${SIGNAL_ROOT_GROUP}' _ "$pid" TERM; sleep 5; sudo -n /bin/sh -c '${SIGNAL_ROOT_GROUP}' _ "$pid" KILL; fi`,
].join('\n');

/** The first line the root shell prints: its PID, which the builder keeps (exec). */
const ROOT_PID_LINE = /^build-image-root-pid (\d+)$/;

function signalRootGroup(pid: number, sig: NodeJS.Signals): void {
  spawn('sudo', ['-n', '/bin/sh', '-c', SIGNAL_ROOT_GROUP, '_', String(pid), sig.replace(/^SIG/, '')], { stdio: 'ignore' }).on('error', () => undefined);
}

export class CommandNotFoundError extends UserError {
  override name = 'CommandNotFoundError';
}

export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    // An abort that already happened is honoured: nothing is started.
    if (options.signal?.aborted) return resolve({ code: 130, signal: 'SIGTERM', stdout: '', tail: [] });
    let rootPid: number | undefined;
    if (options.sudo) {
      const preserve = options.sudo.preserveEnv.length > 0 ? [`--preserve-env=${options.sudo.preserveEnv.join(',')}`] : [];
      args = ['-n', ...preserve, '--', '/bin/sh', '-c', 'echo "build-image-root-pid $$" >&2; exec "$@"', 'build-image', command, ...args];
      command = 'sudo';
    }
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: options.ownGroup === true,
    });
    if (options.ownGroup && child.pid) watchGroup(child.pid);
    const kill = (sig: NodeJS.Signals): void => {
      if (rootPid) signalRootGroup(rootPid, sig);
      try {
        if (options.ownGroup && child.pid) process.kill(-child.pid, sig);
        else child.kill(sig);
      } catch {
        // already gone
      }
    };
    const keep = options.tailLines ?? 40;
    const tail: string[] = [];
    const onAbort = (): void => {
      kill('SIGTERM');
      setTimeout(() => child.exitCode === null && kill('SIGKILL'), 5000).unref();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    // stdout is kept as lines (each bounded), so a runaway single-line output cannot exhaust memory; `keepLine`
    // narrows it further (the smoke stage keeps only its report's line).
    const stdoutLines: string[] = [];
    const emit = (line: string, s: 'stdout' | 'stderr'): void => {
      if (options.sudo && rootPid === undefined && s === 'stderr') {
        const m = ROOT_PID_LINE.exec(line);
        if (m) {
          rootPid = Number(m[1]);
          if (options.ownGroup) spawn('/bin/sh', ['-c', ROOT_WATCHDOG, 'build-image-watchdog', String(process.pid), m[1]], { detached: true, stdio: 'ignore' }).unref();
          return;
        }
      }
      // Apptainer colours its messages; strip the escapes for logs and error messages.
      const clean = line.includes('\x1b') ? line.replace(/\x1b\[[0-9;]*m/g, '') : line;
      if (s === 'stdout' && (options.keepLine?.(line) ?? true)) stdoutLines.push(line);
      tail.push(clean.length > 2000 ? `${clean.slice(0, 2000)} [...]` : clean);
      if (tail.length > keep) tail.shift();
      options.onLine?.(clean, s);
    };
    const splitters = {
      stdout: new LineSplitter((line) => emit(line, 'stdout'), options.maxLineChars),
      stderr: new LineSplitter((line) => emit(line, 'stderr'), options.maxLineChars),
    };
    child.stdout!.on('data', (chunk: Buffer) => splitters.stdout.write(chunk));
    child.stderr!.on('data', (chunk: Buffer) => splitters.stderr.write(chunk));
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.on('error', (error: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (error.code === 'ENOENT') reject(new CommandNotFoundError(`${command}: command not found`));
      else reject(error);
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      // The last line counts whether or not a newline ends it (it is often the error's reason).
      splitters.stdout.end();
      splitters.stderr.end();
      resolve({ code: code ?? 128, signal, stdout: stdoutLines.join('\n'), tail });
    });
  });
}

/** Finds an executable on PATH without spawning `which`. */
export async function findExecutable(name: string, envPath = process.env.PATH ?? ''): Promise<string | undefined> {
  const { access, constants } = await import('node:fs/promises');
  for (const dir of envPath.split(':')) {
    if (!dir) continue;
    const candidate = `${dir}/${name}`;
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}
