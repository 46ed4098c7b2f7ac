// `smoke-formats`: the same payload in each image format the build made (the SIF, and the `.sqsh` beside it), each
// with its own baseline gate, and one result for all of them: the `smoke-json` output, the provenance record's
// figures and the docs PR's table. A format that fails the gate does not stop the others, so the figures of every
// format are there to read when the run fails.
import { renderMarkdown } from '../report/summary.js';
import type { ImageFormat } from '../image/format-names.js';
import type { PayloadReport } from './compare.js';
import { runnerFor } from './launch.js';
import type { SmokeOptions, SmokeResult } from './options.js';
import { formatsSummary } from './report.js';
import { SmokeError } from './run-context.js';

export interface FormatRun {
  format: ImageFormat;
  image: string;
  /** What ran it: `apptainer`/`srun`/`sbatch` for a SIF, `enroot` or `pyxis` for a `.sqsh`. */
  launcher: string;
  report: PayloadReport;
  done: SmokeResult;
}

/**
 * Runs `smoke` for each format's image in turn. A gate failure (the run finished, the figures fell below the
 * baseline) is kept and the next format still runs; any other failure stops at once. Throws after the last format
 * when a gate failed, with the combined result attached.
 */
export async function smokeEachFormat(
  images: { format: ImageFormat; image: string }[],
  options: Omit<SmokeOptions, 'image'>,
  smoke: (opts: SmokeOptions) => Promise<SmokeResult>,
): Promise<{ result: SmokeResult; runs: FormatRun[] }> {
  const runs: FormatRun[] = [];
  const failed: SmokeError[] = [];
  for (const { format, image } of images) {
    const done = await smoke({ ...options, image }).catch((error: unknown) => {
      if (!(error instanceof SmokeError) || !error.result) throw error;
      failed.push(error);
      return error.result;
    });
    const runner = runnerFor(options.launcher, image);
    runs.push({ format, image, launcher: typeof runner === 'string' ? runner : options.launcher, report: done.candidate, done });
  }
  const result = combined(runs);
  if (runs.length > 1 && !options.dryRun) await options.reporter.summary(formatsSummary(runs));
  if (failed.length === 1 && runs.length === 1) throw failed[0];
  if (failed.length > 0) throw new SmokeError(failed.map((e) => e.message).join('\n'), result);
  return { result, runs };
}

/**
 * One result for all formats. With one format it is that format's, unchanged. With more, the `smoke-json` object is
 * the first format's (so a reader of one format's fields keeps working) with `passed` true only when every format
 * passed, and `formats`: each format's own object by name (`{"sif": {...}, "sqsh": {...}}`); the Markdown is the
 * side-by-side table followed by each format's own.
 */
export function combined(runs: FormatRun[]): SmokeResult {
  const first = runs[0].done;
  if (runs.length === 1) return first;
  const passed = runs.every((r) => r.done.passed);
  const formats = Object.fromEntries(runs.map((r) => [r.format, JSON.parse(r.done.json) as unknown]));
  return {
    ...first,
    passed,
    regressions: runs.flatMap((r) => r.done.regressions.map((line) => `${r.format}: ${line}`)),
    json: JSON.stringify({ ...(JSON.parse(first.json) as object), passed, formats }),
    markdown: [renderMarkdown(formatsSummary(runs)), ...runs.map((r) => r.done.markdown)].join('\n'),
  };
}
