// The command line: `build-image <command> [--input value ...]` (entry point: cli.ts).
import { readFileSync } from 'node:fs';
import { commandHelp, envName, generalHelp, parseCommandLine, UsageError } from './cli/args.js';
import { loadConfig, secretValues, type Config } from './config/config.js';
import { INPUTS, type StageName } from './config/schema.js';
import { describeError } from './errors.js';
import { ConsoleReporter } from './report/console.js';
import { VERSION } from './version.js';
import { guarded } from './util/phase.js';
import { heldResources } from './util/resources.js';

export async function main(argv: readonly string[]): Promise<number> {
  const reporter = new ConsoleReporter();
  let config: Config | undefined;
  let signal: AbortSignal | undefined;
  try {
    const parsed = parseCommandLine(argv);
    if ('version' in parsed) {
      process.stdout.write(`build-image ${VERSION}\n`);
      return 0;
    }
    if (!parsed.command) {
      process.stdout.write(generalHelp());
      return 0;
    }
    const { command } = parsed;
    if (parsed.help) {
      process.stdout.write(commandHelp(command));
      return 0;
    }
    const values = { ...parsed.values };
    for (const [name, file] of Object.entries(parsed.files)) {
      try {
        values[name] = readFileSync(file, 'utf8');
      } catch (error) {
        throw new UsageError(`--${name}-file: cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? error}`);
      }
    }
    for (const spec of INPUTS) {
      const fromEnv = process.env[`BUILD_IMAGE_${envName(spec.name)}`];
      if (spec.secret && values[spec.name] === undefined && fromEnv) values[spec.name] = fromEnv;
    }
    const read = (name: string): string | undefined => values[name];
    for (const secret of secretValues(read, INPUTS)) reporter.setSecret(secret);

    switch (command.name) {
      case 'lint': {
        const { lintFile } = await import('./commands/lint.js');
        return await lintFile(parsed.positional[0], read, process.stdout);
      }
      case 'inspect': {
        const { inspectFile } = await import('./commands/inspect.js');
        return await inspectFile(parsed.positional[0], process.stdout);
      }
      case 'table': {
        const { tableCommand } = await import('./commands/table.js');
        const f = parsed.flags;
        return await tableCommand(
          {
            file: String(f.file),
            key: String(f.key),
            value: String(f.value),
            keyColumn: read('table-key-column'),
            valueColumn: read('table-value-column'),
            check: f.check === true,
          },
          process.stdout,
        );
      }
      default: {
        const stageOnly = command.name === 'stage';
        config = loadConfig(read, stageOnly ? { stage: 'build', parts: ['stage'] } : { stage: command.name as StageName });
        if (parsed.printConfig) {
          process.stdout.write(reporter.masked(JSON.stringify(config, null, 2)) + '\n');
          return 0;
        }
        // Loaded only when a stage runs, so --help and --print-config start fast.
        const { cancellationSignal, runPipeline } = await import('./pipeline.js');
        signal = cancellationSignal(reporter);
        const loaded = config;
        const cancel = signal;
        await guarded(() => runPipeline(loaded, reporter, cancel, stageOnly ? ['stage'] : undefined));
        return 0;
      }
    }
  } catch (error) {
    const cancelled = signal?.aborted ? (signal.reason as { exitCode?: number; message?: string }) : undefined;
    const message = describeError(error, (name) => `--${name}`);
    reporter.error(cancelled && !/cancel/i.test(message) ? `${message} (${cancelled.message})` : message);
    // Whatever a stage could not give back itself (a drained event loop, a bug) is given back here.
    if (heldResources().length > 0) {
      const { releaseHeld } = await import('./cleanup.js');
      await releaseHeld(config, reporter);
    }
    return cancelled?.exitCode ?? 1;
  }
}

