// Runs the bundled action as the runner does: INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { tempDir } from './tools.js';

export interface ActionRun {
  status: number;
  /** stdout and stderr together, as the runner's log shows them. */
  stdout: string;
  outputs: Record<string, string>;
  summary: string;
}

export function runBundledAction(
  inputs: Record<string, string>,
  options: { cwd: string; path?: string; env?: Record<string, string> },
): ActionRun {
  const dir = tempDir('bi-runner-');
  const outputFile = path.join(dir.dir, 'output');
  const summaryFile = path.join(dir.dir, 'summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const env: NodeJS.ProcessEnv = {
    PATH: options.path ?? process.env.PATH,
    HOME: process.env.HOME,
    BUILD_IMAGE_SHIM_BINDS: process.env.BUILD_IMAGE_SHIM_BINDS,
    ...options.env,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
  };
  for (const [k, v] of Object.entries(inputs)) env[`INPUT_${k.toUpperCase()}`] = v;
  const result = spawnSync('node', [path.resolve('dist/index.js')], { env, cwd: options.cwd, encoding: 'utf8' });
  const run = {
    status: result.status ?? -1,
    stdout: result.stdout + result.stderr,
    outputs: parseOutputs(readFileSync(outputFile, 'utf8')),
    summary: readFileSync(summaryFile, 'utf8'),
  };
  dir.cleanup();
  return run;
}

/** GITHUB_OUTPUT uses heredoc blocks: `name<<DELIM`, value lines, `DELIM`. */
export function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^([^<]+)<<(.+)$/.exec(lines[i]);
    if (!m) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== m[2]; i++) value.push(lines[i]);
    out[m[1]] = value.join('\n');
  }
  return out;
}
