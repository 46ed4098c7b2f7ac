// Which failures are expected (shown as a message) and which are bugs (shown with a stack trace): every expected
// failure extends UserError, a class of its own small module, so this check pulls no stage into the CLI's start-up.
import { ConfigError } from './config/config.js';
import { UserError } from './user-error.js';

export function isExpected(error: unknown): error is Error {
  return error instanceof UserError;
}

export function describeError(error: unknown, inputName: (name: string) => string): string {
  if (error instanceof ConfigError) {
    // Positional arguments (FILE) are named as they are; inputs as the front end spells them.
    return error.problems.map((p) => `${/^[A-Z]+$/.test(p.input) ? p.input : inputName(p.input)}: ${p.message}`).join('\n');
  }
  if (error instanceof Error && error.name === 'StageInputError') {
    const { input } = error as Error & { input: string };
    return `${inputName(input)}${error.message.slice(input.length)}`;
  }
  if (isExpected(error)) return error.message;
  return error instanceof Error ? (error.stack ?? error.message) : String(error);
}
