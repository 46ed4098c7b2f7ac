// Chains the stages. Each stage is one function over a typed config; this file is the only place that knows
// their order.
import type { Config } from './config/config.js';
import type { Reporter } from './report/reporter.js';
import { build, type BuildResult } from './build/build.js';

export interface PipelineResult {
  build?: BuildResult;
}

export async function runPipeline(config: Config, reporter: Reporter, signal?: AbortSignal): Promise<PipelineResult> {
  switch (config.stage) {
    case 'build':
      return { build: await build(config.build, reporter, { signal }) };
    default:
      // loadConfig already refuses stages this version does not have.
      throw new Error(`stage ${config.stage} is not available`);
  }
}

/** Aborts on SIGINT/SIGTERM (a cancelled workflow), so stages can stop their children and clean up. */
export function cancellationSignal(): AbortSignal {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130);
    controller.abort(new Error(`received ${name}`));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return controller.signal;
}
