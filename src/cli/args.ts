// Command-line parsing and help, generated from the input schema so flags and action inputs cannot drift.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { COMMANDS, DESCRIPTION, INPUTS, type CommandSpec, type InputSpec } from '../config/schema.js';
import { UserError } from '../user-error.js';

export class UsageError extends UserError {
  override name = 'UsageError';
}

export interface ParsedCommand {
  command: CommandSpec;
  /** Raw input values by input name, as the action would read them. */
  values: Record<string, string>;
  /** `--NAME-file` paths by input name; the caller reads them. */
  files: Record<string, string>;
  positional: string[];
  help: boolean;
  /** `--print-config`: print the validated configuration as JSON and stop. */
  printConfig: boolean;
  /** Values of the command's own flags (`table --file`). */
  flags: Record<string, string | boolean>;
}

/** Inputs a command accepts: those of its phases, plus `name` and `dry-run` for stage commands. */
export function commandInputs(command: CommandSpec): InputSpec[] {
  if (command.name === 'lint') return INPUTS.filter((i) => i.name === 'build-args');
  return INPUTS.filter(
    (i) => i.name !== 'stage' && (i.phases.some((p) => command.phases.includes(p)) || command.inputs?.includes(i.name)),
  );
}

/** The candidate within two edits of `word` (a typo), if there is one. */
function nearest(word: string, candidates: string[]): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let i = 1; i <= a.length; i++) {
      let diagonal = row[0];
      row[0] = i;
      for (let j = 1; j <= b.length; j++) {
        const above = row[j];
        row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
        diagonal = above;
      }
    }
    return row[b.length];
  };
  const [best] = candidates.map((c) => [c, distance(word, c)] as const).sort((x, y) => x[1] - y[1]);
  return best && best[1] <= 2 ? best[0] : undefined;
}

function takesFile(spec: InputSpec): boolean {
  return !!(spec.secret || spec.multiline);
}

export function parseCommandLine(argv: readonly string[]): ParsedCommand | { help: true; command?: undefined } | { version: true; command?: undefined } {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') return { help: true };
  if (name === '--version' || name === '-V' || name === 'version') return { version: true };
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    const near = nearest(name, COMMANDS.map((c) => c.name));
    throw new UsageError(`unknown command '${name}'${near ? ` (did you mean '${near}'?)` : ''}; commands: ${COMMANDS.map((c) => c.name).join(', ')}`);
  }
  const specs = commandInputs(command);
  const options: NonNullable<ParseArgsConfig['options']> = {
    help: { type: 'boolean', short: 'h' },
    'print-config': { type: 'boolean' },
  };
  for (const flag of command.flags ?? []) options[flag.name] = { type: flag.boolean ? 'boolean' : 'string' };
  for (const spec of specs) {
    options[spec.name] = { type: 'string', multiple: !!spec.repeatFlag };
    if (spec.repeatFlag) options[spec.repeatFlag] = { type: 'string', multiple: true };
    if (takesFile(spec)) options[`${spec.name}-file`] = { type: 'string' };
  }
  const booleans = new Set(specs.filter((s) => s.kind.type === 'boolean').map((s) => s.name));
  let parsed;
  try {
    parsed = parseArgs({ args: withBooleanValues(rest, booleans), options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(`${(error as Error).message.replace(/\. To specify.*$/s, '')} (see build-image ${name} --help)`);
  }
  const values: Record<string, string> = {};
  const files: Record<string, string> = {};
  for (const spec of specs) {
    const direct = parsed.values[spec.name];
    const repeated = spec.repeatFlag ? parsed.values[spec.repeatFlag] : undefined;
    const all = [direct, repeated].flat().filter((v): v is string => typeof v === 'string');
    if (all.length > 0) values[spec.name] = all.join('\n');
    const file = parsed.values[`${spec.name}-file`];
    if (typeof file === 'string') {
      if (all.length > 0) throw new UsageError(`give --${spec.name} or --${spec.name}-file, not both`);
      files[spec.name] = file;
    }
  }
  const flags: Record<string, string | boolean> = {};
  for (const flag of command.flags ?? []) {
    const value = parsed.values[flag.name];
    if (typeof value === 'string' || typeof value === 'boolean') flags[flag.name] = value;
    else if (flag.required && !parsed.values.help) throw new UsageError(`build-image ${name} needs --${flag.name} ${flag.placeholder ?? ''}`.trim());
  }
  const expected = command.positional ? 1 : 0;
  if (!parsed.values.help && parsed.positionals.length !== expected) {
    throw new UsageError(
      expected === 0
        ? `unexpected argument '${parsed.positionals[0]}' (options are written --name value; see build-image ${name} --help)`
        : `build-image ${name} takes one ${command.positional!.name}`,
    );
  }
  return {
    command,
    values,
    files,
    positional: parsed.positionals,
    help: !!parsed.values.help,
    printConfig: !!parsed.values['print-config'],
    flags,
  };
}

/** Lets boolean inputs be written as bare flags (`--dry-run`) as well as `--dry-run false`. */
function withBooleanValues(args: readonly string[], booleans: Set<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    out.push(arg);
    const m = /^--([a-z0-9-]+)$/.exec(arg);
    if (m && booleans.has(m[1])) {
      const next = args[i + 1];
      if (next === undefined || next.startsWith('--')) out.push('true');
    }
  }
  return out;
}

function wrap(text: string, width: number, indent: string): string {
  const words = text.split(/\s+/);
  const lines: string[] = [];
  let line = '';
  for (const w of words) {
    if (line && line.length + 1 + w.length > width) {
      lines.push(line);
      line = w;
    } else line = line ? `${line} ${w}` : w;
  }
  if (line) lines.push(line);
  return lines.join(`\n${indent}`);
}

export function generalHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    `build-image — ${DESCRIPTION}`,
    '',
    'Usage: build-image <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}${c.available ? '' : ' (not available yet)'}`),
    '',
    'Run build-image <command> --help for its options. Exit status: 0 on success, 1 on any failure.',
    '',
  ].join('\n');
}

export function commandHelp(command: CommandSpec): string {
  const specs = commandInputs(command);
  const usage = `Usage: build-image ${command.name}${command.positional ? ` ${command.positional.name}` : ''} [options]`;
  const lines = [usage, '', command.summary, ''];
  if (!command.available) lines.push('This command is not available in this version yet.', '');
  lines.push('Options:');
  for (const flag of command.flags ?? []) {
    lines.push(`  --${flag.name}${flag.boolean ? '' : ` ${flag.placeholder ?? 'VALUE'}`}`, `      ${wrap(flag.description + (flag.required ? ' (required)' : ''), 90, '      ')}`);
  }
  for (const spec of specs) {
    const flag = `--${spec.name} ${flagPlaceholder(spec)}`;
    const extra: string[] = [];
    if (spec.default !== undefined) extra.push(`default: ${spec.default}`);
    if (spec.repeatFlag) extra.push(`or repeat --${spec.repeatFlag} ${spec.placeholder ?? 'VALUE'}`);
    if (takesFile(spec)) extra.push(`or --${spec.name}-file PATH`);
    if (spec.secret) extra.push(`or env BUILD_IMAGE_${envName(spec.name)}`);
    const description = plain(spec.description) + (extra.length ? ` (${extra.join('; ')})` : '');
    lines.push(`  ${flag}`, `      ${wrap(description, 90, '      ')}`);
  }
  if (command.phases.length > 0) lines.push('  --print-config', '      Print the validated configuration as JSON (secrets masked) and exit.');
  lines.push('  --help', '      Show this help.', '');
  return lines.join('\n');
}

export function flagPlaceholder(spec: InputSpec): string {
  switch (spec.kind.type) {
    case 'enum':
      return spec.kind.values.join('|');
    case 'boolean':
      return '[true|false]';
    case 'integer':
      return 'N';
    case 'duration':
      return 'DURATION';
    case 'percent':
      return 'PERCENT';
    default:
      return spec.placeholder ?? 'VALUE';
  }
}

export function envName(input: string): string {
  return input.toUpperCase().replace(/-/g, '_');
}

/** Descriptions are written in Markdown for action.yml and the README; the terminal gets them without backticks. */
function plain(text: string): string {
  return text.replace(/`/g, '');
}
