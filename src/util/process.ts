// Runs a child process with its output streamed line by line, the tail kept for error messages, and a kill on
// abort, so a cancelled workflow never leaves a builder writing behind our back.
import { spawn } from 'node:child_process';

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Called for each output line as it arrives. */
  onLine?: (line: string, stream: 'stdout' | 'stderr') => void;
  signal?: AbortSignal;
  /** How many trailing lines of output to keep. */
  tailLines?: number;
  input?: string;
}

export interface RunResult {
  code: number;
  signal: NodeJS.Signals | null;
  stdout: string;
  /** The last lines of stdout and stderr together, in arrival order. */
  tail: string[];
}

export class CommandNotFoundError extends Error {
  override name = 'CommandNotFoundError';
}

export function runProcess(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    const keep = options.tailLines ?? 40;
    const tail: string[] = [];
    const stdoutChunks: Buffer[] = [];
    const onAbort = (): void => {
      child.kill('SIGTERM');
      setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), 5000).unref();
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const lineSplitter = (stream: 'stdout' | 'stderr') => {
      let pending = '';
      return (chunk: Buffer) => {
        if (stream === 'stdout') stdoutChunks.push(chunk);
        pending += chunk.toString('utf8');
        const lines = pending.split(/\r?\n|\r/);
        pending = lines.pop() ?? '';
        for (const line of lines) emit(line, stream);
      };
      function emit(line: string, s: 'stdout' | 'stderr'): void {
        // Apptainer colours its messages; strip the escapes for logs and error messages.
        const clean = line.replace(/\x1b\[[0-9;]*m/g, '');
        tail.push(clean);
        if (tail.length > keep) tail.shift();
        options.onLine?.(clean, s);
      }
    };
    child.stdout!.on('data', lineSplitter('stdout'));
    child.stderr!.on('data', lineSplitter('stderr'));
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.on('error', (error: NodeJS.ErrnoException) => {
      options.signal?.removeEventListener('abort', onAbort);
      if (error.code === 'ENOENT') reject(new CommandNotFoundError(`${command}: command not found`));
      else reject(error);
    });
    child.on('close', (code, signal) => {
      options.signal?.removeEventListener('abort', onAbort);
      resolve({ code: code ?? 128, signal, stdout: Buffer.concat(stdoutChunks).toString('utf8'), tail });
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
