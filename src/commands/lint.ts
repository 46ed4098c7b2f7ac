// `build-image lint FILE`: the definition linter on its own, `file:line: severity: message` per finding.
import { readFile } from 'node:fs/promises';
import { ConfigError, parsePairs, type InputReader } from '../config/config.js';
import { formatFinding, lintDefinition } from '../build/lint.js';

export async function lintFile(file: string, read: InputReader, out: NodeJS.WritableStream): Promise<number> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new ConfigError([{ input: 'FILE', message: `cannot read ${file}: ${(error as NodeJS.ErrnoException).code}` }]);
  }
  const { pairs: buildArgs, problems } = parsePairs(read('build-args') ?? '');
  if (problems.length > 0) throw new ConfigError(problems.map((message) => ({ input: 'build-args', message })));
  const findings = lintDefinition(text, { buildArgs });
  for (const f of findings) out.write(formatFinding(file, f) + '\n');
  const errors = findings.filter((f) => f.severity === 'error').length;
  out.write(`${file}: ${errors} error(s), ${findings.length - errors} warning(s)\n`);
  return errors > 0 ? 1 : 0;
}
