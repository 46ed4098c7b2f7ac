// The image formats besides the SIF (`formats`): the enroot image derived from the build, and the names it goes by
// on the cluster. The pipeline stages, promotes and lists it beside the SIF.
import type { Config } from './config/config.js';
import type { BuildResult } from './build/build.js';
import { sqshPathFor, sqshRemoteName } from './image/format-names.js';
import { convertSifToSqsh, type SqshResult } from './image/sqsh.js';
import type { Reporter } from './report/reporter.js';

/** `formats: sif,sqsh`: the enroot image beside the SIF, made from the SIF's own root. */
export async function deriveSqsh(config: Config, built: BuildResult, reporter: Reporter, signal?: AbortSignal): Promise<SqshResult | undefined> {
  const output = sqshPathFor(built.image);
  if (config.dryRun) {
    reporter.info(`dry run: would derive the enroot image ${output} from ${built.image} (unsquashfs, /etc/environment and /etc/rc, mksquashfs with enroot's options)`);
    return undefined;
  }
  const started = Date.now();
  const sqsh = await reporter.group('Derive the enroot image (.sqsh)', () =>
    convertSifToSqsh({ sif: built.image, output, tmpDir: config.build.tmpDir, signal, log: (line) => reporter.warning(line) }),
  );
  reporter.info(`sqsh: ${sqsh.path} (${sqsh.size} bytes, sha256 ${sqsh.sha256}) in ${((Date.now() - started) / 1000).toFixed(1)} s; /etc/rc runs ${sqsh.command.join(' ')} in ${sqsh.workdir}, /etc/environment has ${sqsh.environment.length} variable(s)`);
  reporter.setOutput('sqsh', sqsh.path);
  reporter.setOutput('sqsh-sha256', sqsh.sha256);
  reporter.setOutput('sqsh-size', String(sqsh.size));
  return sqsh;
}

/** The .sqsh's remote name: the SIF's with the extension changed (`pytorch-24.10.sif` → `pytorch-24.10.sqsh`). */
export function sqshName(config: Config): string {
  return sqshRemoteName(config.remote.remoteName!);
}

