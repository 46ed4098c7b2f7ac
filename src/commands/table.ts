// `build-image table --file F --key K --value V [--check]`: the docs table edit on a local file, the same
// edit the docs pull request makes. --check changes nothing and prints the diff it would apply. The file is
// edited as bytes, so that every line outside the edited row keeps its bytes, invalid UTF-8 included.
import { randomBytes } from 'node:crypto';
import { chmod, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { editTableBytes, syntaxOf, tableColumns } from '../docs/table.js';
import { unifiedDiff } from '../docs/line-diff.js';
import { ConfigError } from '../config/config.js';

export interface TableCommandOptions {
  file: string;
  key: string;
  value: string;
  keyColumn?: string;
  valueColumn?: string;
  /** Print the diff and change nothing; exit 1 when the file would change (like `prettier --check`). */
  check: boolean;
}

/**
 * Exit codes: 0 when the file was written or already says the value; with check, 0 when nothing would
 * change and 1 when something would. A TableError (no such table, duplicate rows, ...) is thrown.
 */
export async function tableCommand(opts: TableCommandOptions, out: NodeJS.WritableStream): Promise<number> {
  let bytes: Buffer;
  try {
    bytes = await readFile(opts.file);
  } catch (error) {
    throw new ConfigError([{ input: 'file', message: `cannot read ${opts.file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}` }]);
  }
  const result = editTableBytes(bytes, {
    key: opts.key,
    value: opts.value,
    ...tableColumns(opts.keyColumn || undefined, opts.valueColumn || undefined),
    syntax: syntaxOf(opts.file),
    file: opts.file,
  });
  const what =
    result.operation === 'unchanged'
      ? `${opts.file}: ${opts.key} already has ${result.oldValue}`
      : result.operation === 'replaced'
        ? `${opts.file}: ${opts.key}: ${result.oldValue} -> ${opts.value.trim()}`
        : `${opts.file}: ${opts.key}: added ${opts.value.trim()}`;
  if (opts.check) {
    out.write(unifiedDiff(bytes.toString('utf8'), result.bytes.toString('utf8'), opts.file));
    out.write(`${what}${result.operation === 'unchanged' ? '' : ' (not written: --check)'}\n`);
    return result.operation === 'unchanged' ? 0 : 1;
  }
  if (result.operation !== 'unchanged') await replaceFile(opts.file, result.bytes);
  out.write(`${what}\n`);
  return 0;
}

/** Writes beside the file and renames over it, so an interrupted write leaves the old file whole. */
async function replaceFile(link: string, bytes: Buffer): Promise<void> {
  const file = await realpath(link); // a symlinked docs file stays a link
  const temp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString('hex')}.tmp`);
  const mode = (await stat(file)).mode & 0o7777;
  try {
    await writeFile(temp, bytes, { flag: 'wx' });
    await chmod(temp, mode);
    await rename(temp, file);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}
