// The real PyTorch (CPU) image that scripts/provision-torch-image.sh builds, and a Reporter that keeps what the
// smoke stage says, for assertions.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Reporter } from '../../src/report/reporter.js';
import type { Summary } from '../../src/report/summary.js';

export const TORCH_SIF = process.env.BUILD_IMAGE_TORCH_SIF ?? '/var/cache/build-image/torch-cpu.sif';

/** Fails (never skips) when the image is missing; makes its directory visible to the apptainer shim. */
export function requireTorchImage(): string {
  if (!existsSync(TORCH_SIF)) {
    throw new Error(`the PyTorch test image ${TORCH_SIF} is missing: run scripts/provision-torch-image.sh as root (CI=${process.env.CI ?? 'unset'})`);
  }
  // The shim (scripts/apptainer-shim.sh) binds the top-level data directories and /var/cache/build-image; an image
  // kept elsewhere under /var needs naming.
  const dir = path.dirname(TORCH_SIF);
  const binds = (process.env.BUILD_IMAGE_SHIM_BINDS ?? '').split(':').filter(Boolean);
  if (!binds.includes(dir)) process.env.BUILD_IMAGE_SHIM_BINDS = [...binds, dir].join(':');
  return TORCH_SIF;
}

export interface RecordingReporter extends Reporter {
  lines: string[];
  summaries: Summary[];
  outputs: Record<string, string>;
}

export function recordingReporter(echo = false): RecordingReporter {
  const lines: string[] = [];
  const summaries: Summary[] = [];
  const outputs: Record<string, string> = {};
  const say = (m: string): void => {
    lines.push(m);
    if (echo) process.stderr.write(`${m}\n`);
  };
  return {
    lines,
    summaries,
    outputs,
    info: say,
    warning: (m) => say(`warning: ${m}`),
    error: (m) => say(`error: ${m}`),
    group: async (name, fn) => {
      say(`::group::${name}`);
      try {
        return await fn();
      } finally {
        say('::endgroup::');
      }
    },
    setOutput: (name, value) => {
      outputs[name] = value;
    },
    setSecret: () => undefined,
    summary: async (s) => {
      summaries.push(s);
    },
  };
}
