// `build-image inspect FILE`: what the SIF reader sees, as JSON.
import { access } from 'node:fs/promises';
import { ConfigError } from '../config/config.js';
import { readSifFile } from '../image/sif.js';

export async function inspectFile(file: string, out: NodeJS.WritableStream): Promise<number> {
  await access(file).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError([{ input: 'FILE', message: `cannot read ${file}: ${error.code}` }]);
  });
  const info = await readSifFile(file);
  out.write(JSON.stringify(info, null, 2) + '\n');
  return 0;
}
