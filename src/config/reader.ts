// Reads raw input strings (from action inputs or CLI flags) into typed values, collecting every problem, each
// naming its input and what is accepted, so that all of them are reported at once. Defaults come from the schema.
import { defaultOf, inputSpec, type EnumOf, type InputName, type InputWithDefault } from './schema.js';
import { UserError } from '../user-error.js';

/** Reads one input's raw value; undefined or '' means "not given". */
export type InputReader = (name: string) => string | undefined;

export interface Problem {
  input: string;
  message: string;
}

export class ConfigError extends UserError {
  constructor(readonly problems: Problem[]) {
    super(problems.map((p) => `${p.input}: ${p.message}`).join('\n'));
    this.name = 'ConfigError';
  }
}

/** Collects values and problems while reading inputs, so that all problems are reported at once. */
export class Reader {
  readonly problems: Problem[] = [];
  constructor(private readonly read: InputReader) {}

  problem(input: InputName, message: string): void {
    this.problems.push({ input, message });
  }

  raw(name: InputName): string | undefined {
    const spec = inputSpec(name);
    const value = this.read(name);
    const given = value === undefined || value.trim() === '' ? undefined : value;
    return given ?? spec.default;
  }

  string(name: InputName): string | undefined {
    return this.raw(name)?.trim();
  }

  /** The value exactly as given (a name where a stray newline or space must be refused, not trimmed away). */
  rawString(name: InputName): string | undefined {
    const value = this.read(name);
    return value === undefined || value === '' ? undefined : value;
  }

  /** An input with a default: never undefined. */
  text(name: InputWithDefault): string {
    return this.string(name) ?? defaultOf(name);
  }

  /** One of the values the schema lists, typed as their union. */
  enum<N extends InputName>(name: N): EnumOf<N> {
    const spec = inputSpec(name);
    const value = this.string(name) ?? '';
    const values = spec.kind.type === 'enum' ? spec.kind.values : [];
    if (!values.includes(value)) {
      this.problem(name, `must be one of ${values.join(', ')}; got ${quote(value)}`);
      return (spec.default ?? values[0]) as EnumOf<N>;
    }
    return value as EnumOf<N>;
  }

  boolean(name: InputName): boolean {
    const value = (this.string(name) ?? 'false').toLowerCase();
    if (['true', 'yes', '1', 'on'].includes(value)) return true;
    if (['false', 'no', '0', 'off'].includes(value)) return false;
    this.problem(name, `must be true or false; got ${quote(value)}`);
    return false;
  }

  integer(name: InputName): number {
    const spec = inputSpec(name);
    const text = this.string(name) ?? '';
    const { min = -Infinity, max = Infinity } = spec.kind.type === 'integer' ? spec.kind : {};
    const value = Number(text);
    if (!/^\d+$/.test(text) || value < min || value > max) {
      this.problem(name, `must be a whole number from ${min} to ${max}; got ${quote(text)}`);
      return Number(spec.default ?? min);
    }
    return value;
  }

  /** `90s`, `20m`, `1h30m`, or plain seconds; returns milliseconds. */
  duration(name: InputName): number {
    const text = this.string(name) ?? '';
    const ms = parseDuration(text);
    if (ms === undefined || ms <= 0) {
      this.problem(name, `must be a duration such as 90s, 20m or 1h30m; got ${quote(text)}`);
      return parseDuration(inputSpec(name).default ?? '0') ?? 0;
    }
    return ms;
  }

  /** `10%` or `0.1`, from 0 % to 99 % as the message says; returns a fraction. Empty is refused, not defaulted. */
  percent(name: InputName): number {
    const given = this.read(name);
    const text = given === undefined ? (inputSpec(name).default ?? '') : given.trim();
    const fallback = Number.parseFloat(inputSpec(name).default ?? '10') / 100;
    if (text === '') {
      this.problem(name, 'is empty: give a percentage from 0% to 99%, such as 10%');
      return fallback;
    }
    if (text.startsWith('-')) {
      this.problem(name, `cannot be negative (it is the largest slowdown allowed, from 0% to 99%); got ${quote(text)}`);
      return fallback;
    }
    const m = /^(\d+(?:\.\d+)?)\s*%$/.exec(text);
    const value = m ? Number(m[1]) / 100 : /^(0?\.\d+|0)$/.test(text) ? Number(text) : NaN;
    if (!(value >= 0 && value <= 0.99 + 1e-12)) {
      this.problem(name, `must be a percentage from 0% to 99%, such as 10%; got ${quote(text)}`);
      return fallback;
    }
    return value;
  }

  list(name: InputName): string[] {
    return (this.raw(name) ?? '')
      .split(/[\n,]/)
      .map((v) => v.trim())
      .filter(Boolean);
  }

  pairs(name: InputName): Record<string, string> {
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

export function quote(value: string): string {
  const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  return `'${shown}'`;
}

export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Why a value cannot name a file on the cluster, or undefined when it can. */
export function fileNameProblem(value: string): string | undefined {
  if (/[\x00-\x1f\x7f]/.test(value)) return `must be a plain file name without newlines or control characters; got ${JSON.stringify(value)}`;
  if (value.includes('/')) return `must be a plain file name, without "/"; got ${quote(value)}`;
  if (value === '.' || value === '..' || value.startsWith('.')) return `must be a plain file name not starting with "."; got ${quote(value)}`;
  if (value.trim() !== value) return `must not start or end with a space; got ${quote(value)}`;
  return undefined;
}

export function isHttpUrl(text: string): boolean {
  try {
    return /^https?:$/.test(new URL(text).protocol);
  } catch {
    return false;
  }
}


/** The kind of quote left open in a shell-like word list (shell-quote silently closes it), or undefined. */
export function unterminatedQuote(text: string): 'single' | 'double' | undefined {
  let open: "'" | '"' | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (open === "'") {
      if (c === "'") open = undefined;
    } else if (c === '\\') i++;
    else if (open === '"') {
      if (c === '"') open = undefined;
    } else if (c === "'" || c === '"') open = c;
  }
  return open === "'" ? 'single' : open === '"' ? 'double' : undefined;
}

export function parseDuration(text: string): number | undefined {
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  if (!m || text === '') return undefined;
  return ((Number(m[1] ?? 0) * 60 + Number(m[2] ?? 0)) * 60 + Number(m[3] ?? 0)) * 1000;
}
