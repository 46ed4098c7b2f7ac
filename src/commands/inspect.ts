// `build-image inspect FILE`: what the SIF reader sees, as JSON.
import { stat } from 'node:fs/promises';
import { ConfigError } from '../config/config.js';
import { readSifFile } from '../image/sif.js';

export async function inspectFile(file: string, out: NodeJS.WritableStream): Promise<number> {
  const st = await stat(file).catch((error: NodeJS.ErrnoException) => {
    throw new ConfigError([{ input: 'FILE', message: `cannot read ${file}: ${error.code}` }]);
  });
  if (!st.isFile()) throw new ConfigError([{ input: 'FILE', message: `${file} is not a file (a SIF image is expected)` }]);
  const info = await readSifFile(file);
  out.write(JSON.stringify(info, null, 2) + '\n');
  return 0;
}
