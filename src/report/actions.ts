// The action's reporter: @actions/core groups, annotations on files and lines, step outputs, masking and the
// job summary.
import * as core from '@actions/core';
import { setPhase } from '../util/phase.js';
import { Masker, type Location, type Reporter } from './reporter.js';
import { renderMarkdown, type Summary } from './summary.js';

export class ActionsReporter implements Reporter {
  // The runner masks registered secrets in the log; masking here too covers summaries and outputs that the
  // runner does not filter, and runs outside a runner (tests, `act`).
  private readonly masker = new Masker();

  info(message: string): void {
    core.info(this.masker.mask(message));
  }

  warning(message: string, location?: Location): void {
    core.warning(this.masker.mask(message), annotation(location));
  }

  error(message: string, location?: Location): void {
    core.error(this.masker.mask(message), annotation(location));
  }

  group<T>(name: string, fn: () => Promise<T>): Promise<T> {
    setPhase(name);
    return core.group(name, fn);
  }

  setOutput(name: string, value: string): void {
    core.setOutput(name, this.masker.mask(value));
  }

  setSecret(value: string): void {
    // The runner masks line by line, so a multi-line secret (a private key) is registered per line too.
    for (const line of new Set([value, ...value.split(/\r?\n/)])) if (line.trim()) core.setSecret(line);
    this.masker.add(value);
  }

  async summary(summary: Summary): Promise<void> {
    const markdown = this.masker.mask(renderMarkdown(summary));
    if (process.env.GITHUB_STEP_SUMMARY) {
      await core.summary.addRaw(markdown).write();
    } else {
      core.info(markdown);
    }
  }
}

function annotation(location?: Location): core.AnnotationProperties | undefined {
  if (!location) return undefined;
  return { file: location.file, startLine: location.line, startColumn: location.column };
}
