// `build-image lint FILE`: the definition linter on its own, `file:line: severity: message` per finding.
import { readFile } from 'node:fs/promises';
import { ConfigError, type InputReader } from '../config/config.js';
import { formatFinding, lintDefinition } from '../build/lint.js';

export async function lintFile(file: string, read: InputReader, out: NodeJS.WritableStream): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ input: 'FILE', message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code}` }]);
  }
  const buildArgs: Record<string, string> = {};
  for (const line of (read('build-args') ?? '').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) buildArgs[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const findings = lintDefinition(text, { buildArgs });
  for (const f of findings) out.write(formatFinding(file, f) + '\n');
  const errors = findings.filter((f) => f.severity === 'error').length;
  out.write(`${file}: ${errors} error(s), ${findings.length - errors} warning(s)\n`);
  return errors > 0 ? 1 : 0;
}
