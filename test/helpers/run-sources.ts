// Runs the action's entry point from the sources in this process, as the runner would (INPUT_* variables,
// GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files), keeping what it logs: for tests of code the bundle in dist/ may
// not have yet.
import { jest } from '@jest/globals';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseOutputs } from './action.js';
import { tempDir } from './tools.js';

export interface SourceRun {
  exitCode: number;
  /** What the step printed (workflow commands such as `::error::` included). */
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

/** One runner directory per test process: @actions/core keeps the summary file's path from its first use. */
let runner: { dir: string; cleanup: () => void } | undefined;

export async function runActionFromSources(inputs: Record<string, string>, env: Record<string, string> = {}): Promise<SourceRun> {
  if (!runner) {
    const made = tempDir('bi-runner-');
    process.once('exit', made.cleanup);
    runner = made;
  }
  const outputFile = path.join(runner.dir, 'output');
  const summaryFile = path.join(runner.dir, 'summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const saved = { ...process.env };
  const printed: string[] = [];
  const spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    printed.push(String(chunk));
    return true;
  });
  Object.assign(process.env, env, { GITHUB_OUTPUT: outputFile, GITHUB_STEP_SUMMARY: summaryFile });
  for (const [k, v] of Object.entries(inputs)) process.env[`INPUT_${k.toUpperCase()}`] = v;
  try {
    const { run } = await import('../../src/main.js');
    await run();
    return {
      exitCode: Number(process.exitCode ?? 0),
      log: printed.join(''),
      outputs: parseOutputs(readFileSync(outputFile, 'utf8')),
      summary: readFileSync(summaryFile, 'utf8'),
    };
  } finally {
    spy.mockRestore();
    process.env = saved;
    process.exitCode = 0;
  }
}
