// What the smoke stage is given and what it returns, apart from the stage itself so that the launchers' modules
// can name them without importing the stage.
import type { Reporter } from '../report/reporter.js';
import type { PayloadReport } from './compare.js';
import type { Launcher, SlurmResources } from './launch.js';

/** The Slurm resources (partition, gpus, cpus, mem, time, account, qos) are also what the direct launcher reads. */
export interface SmokeOptions extends Omit<SlurmResources, 'jobName'> {
  image: string;
  launcher: Launcher;
  preset: 'pytorch' | 'none';
  /** Shell command run inside the image (after the preset payload when there is one). */
  command?: string;
  slurmArgs: string[];
  /** Longest the whole test may take per image, queueing included; the job is cancelled after it. */
  timeoutMs: number;
  /** Image to compare against; undefined: no comparison. */
  baseline?: string;
  /** Largest allowed slowdown of GEMM and transfer figures, as a fraction (0.10). */
  maxRegression: number;
  nvccli: boolean;
  /** Run an enroot image (.sqsh) with a writable root: pyxis `--container-writable`, enroot `--rw`. */
  writable?: boolean;
  dryRun: boolean;
  builder?: 'apptainer' | 'singularity';
  binds?: string[];
  reporter: Reporter;
  signal?: AbortSignal;
  /** Fail unless this many GPUs are visible to the payload. Default: `gpus`. */
  requireGpus?: number;
  /** Python inside the image. Default `python3`. */
  python?: string;
  /** Variables set inside the container for the new image's run, and for the baseline's (default: the same). */
  env?: Record<string, string>;
  baselineEnv?: Record<string, string>;
  /**
   * Where the payload copy, the job script and the job's output go. For Slurm it must be on a file system the
   * compute nodes share. Default: a fresh `.build-image-smoke-*` directory in the current directory, removed after.
   */
  workDir?: string;
  /** The payload to run; default: the one shipped with the action. */
  payloadPath?: string;
  /** Status queries the scheduler may leave unanswered in a row (with doubling waits) before the run fails. Default 5. */
  schedulerRetries?: number;
  /** How often an sbatch job is polled, in ms. Default 2000. */
  pollMs?: number;
  /** How many `exec IMAGE true` runs the start latency is the median of. Default 3. */
  latencyRuns?: number;
  /** Environment for the child processes (PATH to find srun, the builder). Default: this process's. */
  processEnv?: NodeJS.ProcessEnv;
}

export interface SmokeResult {
  candidate: PayloadReport;
  baseline?: PayloadReport;
  ratios: Record<string, number>;
  regressions: string[];
  passed: boolean;
  startLatencySeconds: number;
  /** The `smoke-json` output. */
  json: string;
  /** Summary table and mermaid chart, for the job summary and the docs PR body. */
  markdown: string;
}
