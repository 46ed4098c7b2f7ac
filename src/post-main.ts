// The action's `post:` step (entry point: post.ts), run with `post-if: always()`: when the main step was cancelled or
// killed, it gives back what the main step still held (remote locks, Slurm jobs, enroot containers, temporary
// directories), as listed in the state the main step saved. After a clean main step the list is empty and this does nothing.
import * as core from '@actions/core';
import { releaseResources } from './cleanup.js';
import { loadConfig, secretValues, type Config } from './config/config.js';
import { INPUTS } from './config/schema.js';
import { ActionsReporter } from './report/actions.js';
import { parseResources, RESOURCES_STATE } from './util/resources.js';

export async function post(): Promise<void> {
  const reporter = new ActionsReporter();
  const read = (name: string): string => core.getInput(name);
  for (const secret of secretValues(read, INPUTS)) reporter.setSecret(secret);
  const resources = parseResources(core.getState(RESOURCES_STATE));
  if (resources.length === 0) return;
  reporter.info(`the main step ended holding ${resources.length} resource(s); giving them back`);
  let config: Config | undefined;
  try {
    config = loadConfig(read);
  } catch (error) {
    reporter.warning(`the inputs could not be read again (${(error as Error).message.split('\n')[0]}); remote locks are left to go stale`);
  }
  await releaseResources(resources, config, reporter);
}

