// The command line's reporter: progress on stderr, the summary as text on stdout, `file:line: message` for
// findings, secrets masked.
import { setPhase } from '../util/phase.js';
import { Masker, type Location, type Reporter } from './reporter.js';
import { renderText, type Summary } from './summary.js';

export class ConsoleReporter implements Reporter {
  readonly outputs: Record<string, string> = {};
  private readonly masker = new Masker();
  private depth = 0;

  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    private readonly err: NodeJS.WritableStream = process.stderr,
  ) {}

  private write(stream: NodeJS.WritableStream, text: string): void {
    const indent = '  '.repeat(this.depth);
    stream.write(this.masker.mask(text).split('\n').map((l) => indent + l).join('\n') + '\n');
  }

  info(message: string): void {
    this.write(this.err, message);
  }

  warning(message: string, location?: Location): void {
    this.write(this.err, `${where(location)}warning: ${message}`);
  }

  error(message: string, location?: Location): void {
    this.write(this.err, `${where(location)}error: ${message}`);
  }

  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    setPhase(name);
    this.write(this.err, `▸ ${name}`);
    this.depth++;
    try {
      return await fn();
    } finally {
      this.depth--;
    }
  }

  setOutput(name: string, value: string): void {
    this.outputs[name] = value;
  }

  masked(text: string): string {
    return this.masker.mask(text);
  }

  setSecret(value: string): void {
    this.masker.add(value);
  }

  async summary(summary: Summary): Promise<void> {
    this.out.write('\n' + this.masker.mask(renderText(summary)));
  }
}

function where(location?: Location): string {
  if (!location) return '';
  return `${location.file}${location.line ? `:${location.line}` : ''}${location.column ? `:${location.column}` : ''}: `;
}
