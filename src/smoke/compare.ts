// The payload's report as data, and the baseline gate: each figure of the new image against the same figure
// of the baseline, and which throughput figures fell further than `max-regression` allows. Pure.

/** What the payload prints (assets/smoke/pytorch_smoke.py), plus the start latency the stage measures. */
export interface PayloadReport {
  smoke?: string;
  schema?: number;
  ok: boolean;
  error?: string;
  python?: string;
  torch?: string;
  cuda?: string | null;
  cudnn?: string | null;
  nccl?: string | null;
  hostname?: string;
  cuda_visible_devices?: string | null;
  slurm_job_id?: string | null;
  threads?: number;
  gpus?: { index: number; name: string; memory_bytes: number; capability?: string }[];
  import_torch_seconds?: number;
  cuda_init_seconds?: number | null;
  gemm_size?: number;
  cpu_gemm_size?: number;
  metrics?: Record<string, number>;
  /** Median of `exec IMAGE true`, added by the stage. */
  start_latency_seconds?: number;
}

export const PAYLOAD_MARKER = 'build-image/pytorch-smoke';

export interface MetricInfo {
  key: string;
  label: string;
  unit: string;
  /** Throughput (higher is better) or a duration (lower is better). */
  better: 'higher' | 'lower';
  /** Whether `max-regression` applies: GEMM and transfer figures. */
  gated: boolean;
}

export const METRICS: readonly MetricInfo[] = [
  { key: 'gemm_bf16_tflops', label: 'bf16 GEMM', unit: 'TFLOP/s', better: 'higher', gated: true },
  { key: 'gemm_tf32_tflops', label: 'tf32 GEMM', unit: 'TFLOP/s', better: 'higher', gated: true },
  { key: 'gemm_fp16_tflops', label: 'fp16 GEMM', unit: 'TFLOP/s', better: 'higher', gated: true },
  { key: 'h2d_gbps', label: 'H2D pinned', unit: 'GB/s', better: 'higher', gated: true },
  { key: 'd2h_gbps', label: 'D2H pinned', unit: 'GB/s', better: 'higher', gated: true },
  { key: 'cpu_gemm_fp32_gflops', label: 'CPU fp32 GEMM', unit: 'GFLOP/s', better: 'higher', gated: true },
  { key: 'import_torch_seconds', label: 'import torch', unit: 's', better: 'lower', gated: false },
  { key: 'cuda_init_seconds', label: 'CUDA init', unit: 's', better: 'lower', gated: false },
  { key: 'start_latency_seconds', label: 'container start', unit: 's', better: 'lower', gated: false },
];

/** Finds the payload's JSON line in a command's output (other lines may come from a custom command or Slurm). */
export function parsePayloadOutput(stdout: string): PayloadReport | undefined {
  return readPayloadReport(stdout).report;
}

/**
 * The payload's report, checked: the last line that carries the marker must be JSON with `smoke` set to the
 * marker, a boolean `ok`, numeric `metrics` and a string `error` where present. `problem` says what was wrong with
 * a marked line that is not such a report; neither is set when no line carries the marker.
 */
export function readPayloadReport(stdout: string): { report?: PayloadReport; problem?: string } {
  const lines = stdout.split(/\r?\n/);
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i].trim();
    if (!line.includes(PAYLOAD_MARKER)) continue;
    if (!line.startsWith('{')) continue; // a log line that merely mentions the marker
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      return { problem: `the report line is not valid JSON${line.includes('[line cut:') ? ' (it was longer than the line limit)' : ''}: ${line.slice(0, 120)}` };
    }
    const problem = reportProblem(parsed);
    return problem ? { problem } : { report: parsed as PayloadReport };
  }
  return {};
}

function reportProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'the report is not a JSON object';
  const r = value as Record<string, unknown>;
  if (r.smoke !== PAYLOAD_MARKER) return `the report's "smoke" field is not "${PAYLOAD_MARKER}"`;
  if (typeof r.ok !== 'boolean') return `the report's "ok" is ${JSON.stringify(r.ok)}, not true or false`;
  if (r.error !== undefined && r.error !== null && typeof r.error !== 'string') return 'the report\'s "error" is not a string';
  if (r.metrics !== undefined) {
    if (typeof r.metrics !== 'object' || r.metrics === null || Array.isArray(r.metrics)) return 'the report\'s "metrics" is not an object';
    for (const [k, v] of Object.entries(r.metrics)) if (typeof v !== 'number') return `the report's metric "${k}" is ${JSON.stringify(v)}, not a number`;
  }
  return undefined;
}

/** Every figure of a report by metric key, those that are numbers. */
export function figures(report: PayloadReport): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(report.metrics ?? {})) if (Number.isFinite(v)) out[k] = v;
  for (const k of ['import_torch_seconds', 'cuda_init_seconds', 'start_latency_seconds'] as const) {
    const v = report[k];
    if (typeof v === 'number' && Number.isFinite(v)) out[k] = v;
  }
  return out;
}

export function metricInfo(key: string): MetricInfo {
  return METRICS.find((m) => m.key === key) ?? { key, label: key, unit: '', better: 'higher', gated: false };
}

export interface Regression {
  metric: string;
  baseline: number;
  candidate: number;
  /** candidate / baseline */
  ratio: number;
  /** How much slower, as a fraction: 0.22 is 22 % below the baseline. */
  slowdown: number;
}

export interface Comparison {
  /** candidate / baseline for every figure both reports have. */
  ratios: Record<string, number>;
  regressions: Regression[];
  passed: boolean;
}

/**
 * Ratios for every shared figure; a gated (throughput) figure whose ratio is below 1 - maxRegression is a
 * regression. Figures the baseline has but the candidate lacks are regressions too: a GPU figure that
 * disappeared means the GPU path broke.
 */
export function compareReports(candidate: PayloadReport, baseline: PayloadReport, maxRegression: number): Comparison {
  const c = figures(candidate);
  const b = figures(baseline);
  const ratios: Record<string, number> = {};
  const regressions: Regression[] = [];
  const keys = [...METRICS.map((m) => m.key), ...Object.keys(b).filter((k) => !METRICS.some((m) => m.key === k))];
  for (const key of keys) {
    if (!(key in b)) continue;
    const info = metricInfo(key);
    if (!(key in c)) {
      if (info.gated) regressions.push({ metric: key, baseline: b[key], candidate: NaN, ratio: 0, slowdown: 1 });
      continue;
    }
    if (b[key] === 0) continue;
    const ratio = c[key] / b[key];
    ratios[key] = ratio;
    if (info.gated && info.better === 'higher' && isRegression(ratio, maxRegression)) {
      regressions.push({ metric: key, baseline: b[key], candidate: c[key], ratio, slowdown: 1 - ratio });
    }
  }
  return { ratios, regressions, passed: regressions.length === 0 };
}

/**
 * Ratios are compared with this much slack, defined once: a drop exactly equal to the allowed one (0.3 against
 * 30 %) passes, whatever floating point makes of 1 - 0.3.
 */
export const RATIO_TOLERANCE = 1e-9;

/** Whether `ratio` (candidate / baseline) falls further than `maxRegression` below 1. */
export function isRegression(ratio: number, maxRegression: number): boolean {
  return ratio < 1 - maxRegression - RATIO_TOLERANCE;
}

/** `bf16 GEMM: 612 TFLOP/s vs baseline 790 TFLOP/s (-22.5 %, more than the allowed 10 %)` */
export function describeRegression(r: Regression, maxRegression: number): string {
  const info = metricInfo(r.metric);
  const unit = info.unit ? ` ${info.unit}` : '';
  if (Number.isNaN(r.candidate)) {
    return `${info.label} (${r.metric}): missing in the new image (baseline ${formatNumber(r.baseline)}${unit})`;
  }
  return (
    `${info.label} (${r.metric}): ${formatNumber(r.candidate)}${unit} vs baseline ${formatNumber(r.baseline)}${unit} ` +
    `(-${(r.slowdown * 100).toFixed(1)} %, more than the allowed ${formatPercent(maxRegression)})`
  );
}

export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  const abs = Math.abs(value);
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  if (abs >= 1) return value.toFixed(2);
  return value.toFixed(3);
}

export function formatPercent(fraction: number): string {
  return `${Number((fraction * 100).toFixed(1))} %`;
}
