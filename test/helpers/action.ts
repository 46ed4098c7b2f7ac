// Runs the bundled action as the runner does: INPUT_* variables, GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files.
import { spawn, spawnSync } from 'node:child_process';
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

interface RunnerFiles {
  env: NodeJS.ProcessEnv;
  finish(status: number, stdout: string): ActionRun;
}

function prepare(inputs: Record<string, string>, options: { path?: string; env?: Record<string, string> }): RunnerFiles {
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
  return {
    env,
    finish(status, stdout) {
      const run = {
        status,
        stdout,
        outputs: parseOutputs(readFileSync(outputFile, 'utf8')),
        summary: readFileSync(summaryFile, 'utf8'),
      };
      dir.cleanup();
      return run;
    },
  };
}

/** A hung step fails the test instead of the whole run. */
const TIMEOUT_MS = 240_000;

export function runBundledAction(
  inputs: Record<string, string>,
  options: { cwd: string; path?: string; env?: Record<string, string> },
): ActionRun {
  const runner = prepare(inputs, options);
  const result = spawnSync('node', [path.resolve('dist/index.js')], {
    env: runner.env,
    cwd: options.cwd,
    encoding: 'utf8',
    timeout: TIMEOUT_MS,
    killSignal: 'SIGKILL',
  });
  return runner.finish(result.status ?? -1, result.stdout + result.stderr);
}

/** The same, without blocking this process: needed when the test itself serves the action (a local GitHub). */
export function runBundledActionAsync(
  inputs: Record<string, string>,
  options: { cwd: string; path?: string; env?: Record<string, string>; script?: string },
): Promise<ActionRun> {
  const runner = prepare(inputs, options);
  return new Promise((resolve, reject) => {
    const child = spawn('node', [options.script ?? path.resolve('dist/index.js')], { env: runner.env, cwd: options.cwd });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(runner.finish(code ?? -1, output));
    });
  });
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
