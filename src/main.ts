// The GitHub Action: read inputs, mask secrets, run the configured stages, fail the step with a message.
import * as core from '@actions/core';
import { loadConfig, secretValues } from './config/config.js';
import { INPUTS } from './config/schema.js';
import { describeError } from './errors.js';
import { cancellationSignal, runPipeline } from './pipeline.js';
import { ActionsReporter } from './report/actions.js';

export async function run(): Promise<void> {
  const reporter = new ActionsReporter();
  const read = (name: string): string => core.getInput(name);
  // Mask before anything else is logged, including validation errors.
  for (const secret of secretValues(read, INPUTS)) reporter.setSecret(secret);
  try {
    const config = loadConfig(read);
    await runPipeline(config, reporter, cancellationSignal());
  } catch (error) {
    core.setFailed(describeError(error, (name) => `input ${name}`));
  }
}
