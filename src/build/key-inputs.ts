// `key-inputs`: what a definition installs from a moving target (a nightly wheel, `git clone` of a branch) joins
// the build key, so that an unchanged definition is only skipped while those targets are unchanged too.
//
// One input a line. A line that starts with `$ ` is a command run on the runner with `/bin/sh -c` in the build's
// working directory; its standard output (trailing white space trimmed) joins the key. Any other line joins the
// key as written. Blank lines and lines starting with `#` are ignored.
import { UserError } from '../user-error.js';

export interface KeyInput {
  /** The line as written. */
  line: string;
  /** What joined the key: the line itself, or the command's output. */
  value: string;
}

/** A `key-inputs` command that failed: the build stops before anything is built or compared. */
export class KeyInputError extends UserError {
  override name = 'KeyInputError';
}

const COMMAND_TIMEOUT_MS = 5 * 60_000;

export function keyInputLines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

export async function evaluateKeyInputs(lines: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; signal?: AbortSignal } = {}): Promise<KeyInput[]> {
  const out: KeyInput[] = [];
  for (const [index, line] of lines.entries()) {
    const m = /^\$\s+(.+)$/.exec(line);
    if (!m) {
      out.push({ line, value: line });
      continue;
    }
    const timeout = AbortSignal.timeout(COMMAND_TIMEOUT_MS);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const { runProcess } = await import('../util/process.js');
    const run = await runProcess('/bin/sh', ['-c', m[1]], { cwd: options.cwd, env: options.env, signal, tailLines: 5 });
    if (timeout.aborted) throw new KeyInputError(`key-inputs line ${index + 1}: \`${m[1]}\` did not finish within ${COMMAND_TIMEOUT_MS / 60_000} minutes; nothing was built`);
    if (run.code !== 0) {
      throw new KeyInputError(`key-inputs line ${index + 1}: \`${m[1]}\` exited ${run.code}${run.tail.length ? `: ${run.tail.join(' ').trim()}` : ''}; nothing was built`);
    }
    const value = run.stdout.replace(/\s+$/, '');
    if (value === '') throw new KeyInputError(`key-inputs line ${index + 1}: \`${m[1]}\` printed nothing; a command must print what it found (e.g. a version), or an unchanged key would hide a change`);
    out.push({ line, value });
  }
  return out;
}
