// Which failures are expected (shown as a message) and which are bugs (shown with a stack trace).
import { ConfigError } from './config/config.js';
import { BuildError } from './build/build.js';
import { BuilderNotFoundError } from './build/builder.js';
import { SifFormatError } from './image/sif.js';
import { CommandNotFoundError } from './util/process.js';

export function isExpected(error: unknown): error is Error {
  return (
    error instanceof ConfigError ||
    error instanceof BuildError ||
    error instanceof BuilderNotFoundError ||
    error instanceof SifFormatError ||
    error instanceof CommandNotFoundError
  );
}

export function describeError(error: unknown, inputName: (name: string) => string): string {
  if (error instanceof ConfigError) {
    // Positional arguments (FILE) are named as they are; inputs as the front end spells them.
    return error.problems.map((p) => `${/^[A-Z]+$/.test(p.input) ? p.input : inputName(p.input)}: ${p.message}`).join('\n');
  }
  if (isExpected(error)) return error.message;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
