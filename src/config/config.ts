// Turns raw input strings (from action inputs or CLI flags) into one typed, validated configuration. Every
// problem is collected and reported together, each naming its input and what is accepted.
import { existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { inputSpec, type InputSpec, type StageName } from './schema.js';
import { parseSource, type Source } from '../build/source.js';

/** Reads one input's raw value; undefined or '' means "not given". */
export type InputReader = (name: string) => string | undefined;

export interface Problem {
  input: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => `${p.input}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

export type Builder = 'auto' | 'apptainer' | 'singularity';
export type Fakeroot = 'auto' | 'true' | 'false';
export type Compression = 'gzip' | 'xz' | 'zstd' | 'lz4';

export interface BuildConfig {
  name?: string;
  builder: Builder;
  source?: Source;
  /** Absolute path of the definition file. */
  definition?: string;
  buildArgs: Record<string, string>;
  /** Absolute path of the SIF to write. */
  output: string;
  fakeroot: Fakeroot;
  registry?: { username: string; password: string };
  registryInsecure: boolean;
  labels: Record<string, string>;
  compression: Compression;
  dryRun: boolean;
}

export interface Config {
  stage: StageName;
  build: BuildConfig;
}

/** Collects values and problems while reading inputs, so that all problems are reported at once. */
class Reader {
  readonly problems: Problem[] = [];
  constructor(private readonly read: InputReader) {}

  problem(input: string, message: string): void {
    this.problems.push({ input, message });
  }

  raw(name: string): string | undefined {
    const spec = inputSpec(name);
    const value = this.read(name);
    const given = value === undefined || value.trim() === '' ? undefined : value;
    return given ?? spec.default;
  }

  string(name: string): string | undefined {
    return this.raw(name)?.trim();
  }

  enum<T extends string>(name: string): T {
    const spec = inputSpec(name);
    const value = this.string(name) ?? '';
    const values = spec.kind.type === 'enum' ? spec.kind.values : [];
    if (!values.includes(value)) {
      this.problem(name, `must be one of ${values.join(', ')}; got ${quote(value)}`);
      return (spec.default ?? values[0]) as T;
    }
    return value as T;
  }

  boolean(name: string): boolean {
    const value = (this.string(name) ?? 'false').toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(value)) return true;
    if (['false', 'no', '0', 'off'].includes(value)) return false;
    this.problem(name, `must be true or false; got ${quote(value)}`);
    return false;
  }

  pairs(name: string): Record<string, string> {
    const { pairs, problems } = parsePairs(this.raw(name) ?? '');
    for (const message of problems) this.problem(name, message);
    return pairs;
  }
}

/** `KEY=VALUE` lines (build args, labels); blank lines and `#` comments are skipped. */
export function parsePairs(text: string): { pairs: Record<string, string>; problems: string[] } {
  const pairs: Record<string, string> = {};
  const problems: string[] = [];
  text.split(/\r?\n/).forEach((line, index) => {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const eq = trimmed.indexOf('=');
    const key = eq > 0 ? trimmed.slice(0, eq).trim() : '';
    if (eq <= 0 || !/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) {
      problems.push(`line ${index + 1}: expected KEY=VALUE with KEY of letters, digits, _ . -; got ${quote(trimmed)}`);
      return;
    }
    pairs[key] = trimmed.slice(eq + 1).trim();
  });
  return { pairs, problems };
}

function quote(value: string): string {
  const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return `'${shown}'`;
}

const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function loadConfig(read: InputReader, options: { cwd?: string; stage?: StageName } = {}): Config {
  const cwd = options.cwd ?? process.cwd();
  const r = new Reader(read);
  const stage = options.stage ?? r.enum<StageName>('stage');
  const build = readBuild(r, cwd);
  if (stage !== 'build') {
    r.problem('stage', `\`${stage}\` is not available in this version yet; use \`build\``);
  }
  if (r.problems.length > 0) throw new ConfigError(r.problems);
  return { stage, build };
}

function readBuild(r: Reader, cwd: string): BuildConfig {
  const name = r.string('name');
  if (name !== undefined && !NAME_PATTERN.test(name)) {
    r.problem('name', `must be letters, digits, '.', '_' or '-' (starting with a letter or digit); got ${quote(name)}`);
  }
  const builder = r.enum<Builder>('builder');
  const fakeroot = r.enum<Fakeroot>('fakeroot');
  const compression = r.enum<Compression>('compression');
  const dryRun = r.boolean('dry-run');
  const registryInsecure = r.boolean('registry-insecure');
  const buildArgs = r.pairs('build-args');
  const labels = r.pairs('labels');

  const sourceText = r.string('source');
  const definitionText = r.string('definition');
  let source: Source | undefined;
  let definition: string | undefined;
  if (sourceText && definitionText) {
    r.problem('source', 'give either `source` or `definition`, not both (a definition file names its own source in `From:`)');
  } else if (!sourceText && !definitionText) {
    r.problem('source', 'nothing to build: set `source` (docker://, oras://, docker-archive:, oci-archive: or a .sif) or `definition`');
  } else if (sourceText) {
    try {
      source = parseSource(sourceText, cwd);
    } catch (error) {
      r.problem('source', (error as Error).message);
    }
  } else if (definitionText) {
    definition = path.resolve(cwd, definitionText);
    if (!existsSync(definition)) r.problem('definition', `file not found: ${definitionText}`);
    else if (!statSync(definition).isFile()) r.problem('definition', `not a file: ${definitionText}`);
  }
  if (Object.keys(buildArgs).length > 0 && sourceText) {
    r.problem('build-args', 'build arguments only apply to a `definition` build');
  }

  const outputText = r.string('output') ?? `${name ?? 'image'}.sif`;
  const output = path.resolve(cwd, outputText);
  const outputDir = path.dirname(output);
  if (!existsSync(outputDir)) r.problem('output', `directory does not exist: ${outputDir}`);
  else if (!statSync(outputDir).isDirectory()) r.problem('output', `not a directory: ${outputDir}`);
  else if (existsSync(output) && statSync(output).isDirectory()) r.problem('output', `is a directory: ${outputText}`);

  const username = r.string('registry-username');
  const password = r.raw('registry-password');
  let registry: BuildConfig['registry'];
  if (username && password) registry = { username, password };
  else if (username) r.problem('registry-password', 'required when `registry-username` is set');
  else if (password) r.problem('registry-username', 'required when `registry-password` is set');

  return {
    name,
    builder,
    source,
    definition,
    buildArgs,
    output,
    fakeroot,
    registry,
    registryInsecure,
    labels,
    compression,
    dryRun,
  };
}

/** Secret input values, to be masked before anything is logged. */
export function secretValues(read: InputReader, specs: readonly InputSpec[]): string[] {
  return specs
    .filter((s) => s.secret)
    .map((s) => read(s.name))
    .filter((v): v is string => v !== undefined && v !== '');
}
