// Which failures are expected (shown as a message) and which are bugs (shown with a stack trace). Errors are
// recognised by name so that this module does not pull every stage into the CLI's start-up path.
import { ConfigError } from './config/config.js';

const EXPECTED = new Set([
  'ConfigError',
  'BuildError',
  'BuilderNotFoundError',
  'SifFormatError',
  'CommandNotFoundError',
  'StageInputError',
  'SmokeError',
  'SftpError',
  'HostKeyError',
  'PullRequestError',
  'TableError',
  'TableMarkupError',
  'UsageError',
  'CancelledError',
  'StalledError',
  'UnhandledError',
]);

export function isExpected(error: unknown): error is Error {
  return error instanceof Error && EXPECTED.has(error.name);
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
