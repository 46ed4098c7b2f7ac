// A Reporter that records everything (masked, as the real ones are) so tests can read what a user would see.
import { Masker, type Reporter } from '../../src/report/reporter.js';
import { renderText, type Summary } from '../../src/report/summary.js';

export class CaptureReporter implements Reporter {
  readonly lines: string[] = [];
  readonly outputs: Record<string, string> = {};
  private readonly masker = new Masker();

  info(message: string): void {
    this.lines.push(this.masker.mask(message));
  }
  warning(message: string): void {
    this.lines.push(`warning: ${this.masker.mask(message)}`);
  }
  error(message: string): void {
    this.lines.push(`error: ${this.masker.mask(message)}`);
  }
  async group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    this.lines.push(`▸ ${name}`);
    return fn();
  }
  setOutput(name: string, value: string): void {
    this.outputs[name] = value;
  }
  setSecret(value: string): void {
    this.masker.add(value);
  }
  async summary(summary: Summary): Promise<void> {
    this.lines.push(this.masker.mask(renderText(summary)));
  }
  text(): string {
    return this.lines.join('\n');
  }
}
