// The GitHub Action: read inputs, mask secrets, run the configured stages, fail the step with a message.
import * as core from '@actions/core';
import { loadConfig, secretValues, type Config } from './config/config.js';
import { INPUTS } from './config/schema.js';
import { describeError } from './errors.js';
import { cancellationSignal, runPipeline } from './pipeline.js';
import { ActionsReporter } from './report/actions.js';
import { guarded } from './util/phase.js';
import { heldResources, onResourcesChange, RESOURCES_STATE } from './util/resources.js';

export async function run(): Promise<void> {
  const reporter = new ActionsReporter();
  // An input the workflow did not set is absent (the runner fills in action.yml's defaults itself); one set to ''
  // is given as empty, so that an empty value can be refused rather than silently defaulted.
  const read = (name: string): string | undefined => (process.env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] === undefined ? undefined : core.getInput(name));
  // Mask before anything else is logged, including validation errors.
  for (const secret of secretValues(read, INPUTS)) reporter.setSecret(secret);
  // Saved on every change, so a step killed at any moment leaves its post step the list of what to give back.
  onResourcesChange((held) => core.saveState(RESOURCES_STATE, JSON.stringify(held)));
  let config: Config | undefined;
  try {
    config = loadConfig(read);
    const loaded = config;
    await guarded(() => runPipeline(loaded, reporter, cancellationSignal(reporter)));
  } catch (error) {
    core.setFailed(describeError(error, (name) => `input ${name}`));
    if (heldResources().length > 0) {
      const { releaseHeld } = await import('./cleanup.js');
      await releaseHeld(config, reporter);
    }
  }
}
