// Runs an example workflow from workflows/ job by job, as a runner would, with the bundled action in place of
// `uses: sjtu-hpc/build-image@v1`: jobs in `needs` order, `if:` conditions and `${{ }}` expressions evaluated by
// GitHub's own expression library (@actions/expressions) against the github, env, secrets, vars, inputs, needs and
// steps contexts, `with:` values passed as INPUT_* variables, step outputs read from GITHUB_OUTPUT, job outputs
// formed from them as the YAML says. `run:` steps run in bash with the same runner files. Other actions
// (checkout, setup-apptainer, attest) are not run; the harness records the inputs they would have received.
// Only what the test must change to reach local services is overridden, through `override`, and recorded.
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import { truthy } from '@actions/expressions/result';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { parseOutputs, runBundledActionAsync, type ActionRun } from './action.js';
import { tempDir } from './tools.js';

export const ACTION = 'sjtu-hpc/build-image@v1';

interface StepYaml {
  id?: string;
  name?: string;
  if?: string | boolean;
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}

interface JobYaml {
  needs?: string | string[];
  if?: string | boolean;
  outputs?: Record<string, string>;
  steps: StepYaml[];
}

export interface StepResult {
  id?: string;
  /** `uses` or the step's name. */
  name: string;
  /** `ran`: the bundled action or a shell step ran; `not-run`: another action, recorded only; `skipped`: `if` false. */
  state: 'ran' | 'not-run' | 'skipped';
  inputs: Record<string, string>;
  action?: ActionRun;
  outputs: Record<string, string>;
}

export interface JobResult {
  /** False when the job's `if:` was false (or a job it needs did not succeed). */
  ran: boolean;
  succeeded: boolean;
  steps: StepResult[];
  outputs: Record<string, string>;
}

export interface WorkflowContext {
  /** The github context: event_name, ref, ref_name, ref_type, sha, repository, run_id. */
  github: Record<string, string>;
  secrets?: Record<string, string>;
  vars?: Record<string, string>;
  /** workflow_dispatch inputs. */
  inputs?: Record<string, unknown>;
  /** The checkout: where every step runs. */
  cwd: string;
  /** Extra process environment for every step (PATH, RUNNER_TEMP, SLURM_CONF ...). */
  env?: Record<string, string>;
  /**
   * Changes to a build-image step's evaluated inputs, to reach the local services (host, port, directories); an
   * input mapped to undefined is removed. Called with the job id.
   */
  override?: (job: string, inputs: Record<string, string>) => Record<string, string | undefined>;
  /** `run:` steps (by name) not to run: they need a hosted runner's disk layout, say. */
  skipRunSteps?: string[];
}

export interface WorkflowRun {
  jobs: Record<string, JobResult>;
  /** Every job's log, in order. */
  log: string;
}

export function loadWorkflow(file: string): { env: Record<string, string>; jobs: Record<string, JobYaml> } {
  const doc = parse(readFileSync(file, 'utf8')) as { env?: Record<string, string>; jobs: Record<string, JobYaml> };
  return { env: doc.env ?? {}, jobs: doc.jobs };
}

function toData(value: unknown): data.ExpressionData {
  if (value === undefined || value === null) return new data.Null();
  if (typeof value === 'string') return new data.StringData(value);
  if (typeof value === 'boolean') return new data.BooleanData(value);
  if (typeof value === 'number') return new data.NumberData(value);
  if (Array.isArray(value)) return new data.Array(...value.map(toData));
  const dict = new data.Dictionary();
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) dict.add(k, toData(v));
  return dict;
}

const CONTEXTS = ['github', 'env', 'secrets', 'vars', 'inputs', 'needs', 'steps', 'runner', 'job', 'matrix', 'strategy'];

function evaluate(expression: string, contexts: Record<string, unknown>): data.ExpressionData {
  const lexed = new Lexer(expression).lex();
  const parsed = new Parser(lexed.tokens, CONTEXTS, []).parse();
  return new Evaluator(parsed, toData(contexts) as data.Dictionary).evaluate();
}

/** A `with:` value or an `env:` value: `${{ }}` parts replaced by their string values. */
export function interpolate(text: string, contexts: Record<string, unknown>): string {
  return text.replace(/\$\{\{(.*?)\}\}/gs, (_, expr: string) => evaluate(expr.trim(), contexts).coerceString());
}

/** An `if:` condition: a bare expression or one wrapped in `${{ }}`; absent means success(). */
function condition(value: string | boolean | undefined, contexts: Record<string, unknown>): boolean {
  if (value === undefined) return true;
  if (typeof value === 'boolean') return value;
  const bare = value.trim().replace(/^\$\{\{(.*)\}\}$/s, '$1').trim();
  return truthy(evaluate(bare, contexts));
}

function order(jobs: Record<string, JobYaml>): string[] {
  const done: string[] = [];
  const visit = (id: string, seen: string[]) => {
    if (done.includes(id)) return;
    if (seen.includes(id)) throw new Error(`needs cycle: ${[...seen, id].join(' -> ')}`);
    for (const need of needsOf(jobs[id])) visit(need, [...seen, id]);
    done.push(id);
  };
  for (const id of Object.keys(jobs)) visit(id, []);
  return done;
}

function needsOf(job: JobYaml): string[] {
  return job.needs === undefined ? [] : Array.isArray(job.needs) ? job.needs : [job.needs];
}

function runShellStep(script: string, env: NodeJS.ProcessEnv, cwd: string): { status: number; output: string; outputs: Record<string, string> } {
  const files = tempDir('bi-step-');
  const outputFile = path.join(files.dir, 'output');
  writeFileSync(outputFile, '');
  const r = spawnSync('bash', ['-e', '-c', script], { cwd, env: { ...env, GITHUB_OUTPUT: outputFile }, encoding: 'utf8' });
  // A `run:` step writes `name=value` lines (or heredoc blocks) to GITHUB_OUTPUT.
  const text = readFileSync(outputFile, 'utf8');
  const outputs = { ...Object.fromEntries(text.split('\n').filter((l) => /^[^<=]+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)])), ...parseOutputs(text) };
  files.cleanup();
  return { status: r.status ?? -1, output: r.stdout + r.stderr, outputs };
}

/** The github context's values as the runner also exports them to every step. */
function githubEnv(github: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(github)) env[`GITHUB_${k.toUpperCase()}`] = v;
  return env;
}

/** Async: the bundled action runs as a child process while this process serves the local GitHub. */
export async function runWorkflow(file: string, ctx: WorkflowContext): Promise<WorkflowRun> {
  const workflow = loadWorkflow(file);
  const jobs: Record<string, JobResult> = {};
  let log = '';
  const base = { github: ctx.github, secrets: ctx.secrets ?? {}, vars: ctx.vars ?? {}, inputs: ctx.inputs ?? {} };
  const env = interpolateAll(workflow.env, { ...base, env: {} });
  for (const id of order(workflow.jobs)) {
    const job = workflow.jobs[id];
    const needs = Object.fromEntries(needsOf(job).map((n) => [n, { outputs: jobs[n].outputs, result: jobs[n].succeeded ? 'success' : jobs[n].ran ? 'failure' : 'skipped' }]));
    const jobContexts = { ...base, env, needs };
    const neededOk = needsOf(job).every((n) => jobs[n].succeeded);
    if (!neededOk || !condition(job.if, jobContexts)) {
      jobs[id] = { ran: false, succeeded: false, steps: [], outputs: {} };
      log += `== job ${id}: skipped\n`;
      continue;
    }
    log += `== job ${id}\n`;
    const steps: Record<string, { outputs: Record<string, string>; outcome: string }> = {};
    const results: StepResult[] = [];
    let failed = false;
    for (const step of job.steps) {
      const contexts = { ...jobContexts, steps };
      const name = step.uses ?? step.name ?? step.run ?? '?';
      if (failed || !condition(step.if, contexts)) {
        results.push({ id: step.id, name, state: 'skipped', inputs: {}, outputs: {} });
        continue;
      }
      const inputs = interpolateAll(Object.fromEntries(Object.entries(step.with ?? {}).map(([k, v]) => [k, String(v)])), contexts);
      const stepEnv = { ...ctx.env, ...env, ...githubEnv(ctx.github) };
      let result: StepResult;
      if (step.uses === ACTION) {
        const given = { ...inputs };
        for (const [k, v] of Object.entries(ctx.override?.(id, inputs) ?? {})) {
          if (v === undefined) delete given[k];
          else given[k] = v;
        }
        const action = await runBundledActionAsync(given, { cwd: ctx.cwd, path: ctx.env?.PATH, env: stepEnv });
        log += action.stdout;
        result = { id: step.id, name, state: 'ran', inputs: given, action, outputs: action.outputs };
        failed = action.status !== 0;
      } else if (step.run !== undefined && !ctx.skipRunSteps?.includes(step.name ?? '')) {
        const shell = runShellStep(interpolate(step.run, contexts), { ...process.env, ...stepEnv }, ctx.cwd);
        log += shell.output;
        result = { id: step.id, name, state: 'ran', inputs: {}, outputs: shell.outputs };
        failed = shell.status !== 0;
      } else {
        result = { id: step.id, name, state: 'not-run', inputs, outputs: {} };
      }
      results.push(result);
      if (step.id) steps[step.id] = { outputs: result.outputs, outcome: failed ? 'failure' : 'success' };
    }
    const outputs = interpolateAll(job.outputs ?? {}, { ...jobContexts, steps });
    jobs[id] = { ran: true, succeeded: !failed, steps: results, outputs };
  }
  return { jobs, log };
}

function interpolateAll(values: Record<string, string>, contexts: Record<string, unknown>): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, interpolate(String(v), contexts)]));
}

/** The step of a job that ran the bundled action (the first, or the one with this id). */
export function actionStep(run: WorkflowRun, job: string, id?: string): StepResult {
  const step = run.jobs[job]?.steps.find((s) => s.name === ACTION && (id === undefined || s.id === id));
  if (!step) throw new Error(`job ${job} has no ${ACTION} step${id ? ` with id ${id}` : ''}`);
  return step;
}
