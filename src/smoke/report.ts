// The smoke test's results for people (a Markdown table and a mermaid bar chart, for the job summary and the
// docs PR body) and for machines (the `smoke-json` output). Pure.
import type { Summary } from '../report/summary.js';
import { figures, formatNumber, formatPercent, metricInfo, METRICS, type Comparison, type PayloadReport } from './compare.js';

export interface SmokeReportInput {
  image: string;
  baselineImage?: string;
  launcher: string;
  candidate: PayloadReport;
  baseline?: PayloadReport;
  comparison?: Comparison;
  maxRegression: number;
}

/** The `smoke-json` output: both reports, the ratios and the verdict. */
export function smokeJson(input: SmokeReportInput): string {
  return JSON.stringify({
    image: input.image,
    baseline_image: input.baselineImage ?? null,
    launcher: input.launcher,
    passed: input.comparison?.passed ?? true,
    max_regression: input.maxRegression,
    candidate: input.candidate,
    baseline: input.baseline ?? null,
    ratios: input.comparison?.ratios ?? {},
    regressions: (input.comparison?.regressions ?? []).map((r) => ({ ...r, candidate: Number.isNaN(r.candidate) ? null : r.candidate })),
  });
}

function orderedKeys(candidate: PayloadReport, baseline?: PayloadReport): string[] {
  const have = new Set([...Object.keys(figures(candidate)), ...Object.keys(baseline ? figures(baseline) : {})]);
  const known = METRICS.map((m) => m.key).filter((k) => have.has(k));
  return [...known, ...[...have].filter((k) => !known.includes(k)).sort()];
}

function cell(value: number | undefined, unit: string): string {
  return value === undefined ? '—' : `${formatNumber(value)}${unit ? ` ${unit}` : ''}`;
}

/** Rows of metric, baseline, candidate, ratio (ratio marked when it is a regression). */
export function metricRows(input: SmokeReportInput): string[][] {
  const c = figures(input.candidate);
  const b = input.baseline ? figures(input.baseline) : {};
  const regressed = new Set((input.comparison?.regressions ?? []).map((r) => r.metric));
  return orderedKeys(input.candidate, input.baseline).map((key) => {
    const info = metricInfo(key);
    const ratio = input.comparison?.ratios[key];
    let ratioCell = ratio === undefined ? '—' : `${ratio.toFixed(2)}×`;
    if (regressed.has(key)) ratioCell += ' ❌';
    const label = `${info.label}${info.better === 'lower' ? ' (lower is better)' : ''}`;
    return [label, cell(b[key], info.unit), cell(c[key], info.unit), ratioCell];
  });
}

/**
 * A mermaid `xychart-beta` bar chart of the throughput figures. With a baseline each figure is shown as a
 * percentage of it (units differ between GEMM and transfers); without one, the new image's values.
 */
export function mermaidChart(input: SmokeReportInput): string | undefined {
  const c = figures(input.candidate);
  const b = input.baseline ? figures(input.baseline) : undefined;
  const keys = METRICS.filter((m) => m.better === 'higher' && m.key in c && (!b || m.key in b)).map((m) => m.key);
  if (keys.length === 0) return undefined;
  const labels = keys.map((k) => JSON.stringify(metricInfo(k).label)).join(', ');
  const lines = ['```mermaid', 'xychart-beta'];
  if (b) {
    const candidate = keys.map((k) => Number(((c[k] / b[k]) * 100).toFixed(1)));
    const top = Math.max(110, ...candidate.map((v) => Math.ceil(v / 10) * 10));
    lines.push(
      '    title "Throughput, % of baseline (first bar: baseline, second: new image)"',
      `    x-axis [${labels}]`,
      `    y-axis "% of baseline" 0 --> ${top}`,
      `    bar [${keys.map(() => 100).join(', ')}]`,
      `    bar [${candidate.join(', ')}]`,
    );
  } else {
    lines.push(
      '    title "Throughput of the new image"',
      `    x-axis [${keys.map((k) => JSON.stringify(`${metricInfo(k).label} (${metricInfo(k).unit})`)).join(', ')}]`,
      '    y-axis "value"',
      `    bar [${keys.map((k) => Number(c[k].toFixed(2))).join(', ')}]`,
    );
  }
  lines.push('```');
  return lines.join('\n');
}

function environmentFacts(r: PayloadReport): string {
  const parts = [`Python ${r.python ?? '?'}`, `torch ${r.torch ?? '?'}`];
  if (r.cuda) parts.push(`CUDA ${r.cuda}`);
  if (r.cudnn) parts.push(`cuDNN ${r.cudnn}`);
  if (r.nccl) parts.push(`NCCL ${r.nccl}`);
  return parts.join(', ');
}

function gpuFacts(r: PayloadReport): string {
  if (!r.gpus || r.gpus.length === 0) return `none (CPU only, ${r.threads ?? '?'} threads)`;
  return r.gpus.map((g) => `${g.name} (${(g.memory_bytes / 1024 ** 3).toFixed(0)} GiB)`).join(', ');
}

/** The stage's summary: facts, the metric table, the chart, and the verdict. */
export function smokeSummary(input: SmokeReportInput): Summary {
  const facts: Summary['facts'] = [
    { label: 'Image', value: input.image, code: true },
    { label: 'Launcher', value: input.launcher },
  ];
  if (input.baselineImage) facts.push({ label: 'Baseline', value: input.baselineImage, code: true });
  if (input.candidate.torch) facts.push({ label: 'Software', value: environmentFacts(input.candidate) });
  if (input.candidate.torch) facts.push({ label: 'GPUs', value: gpuFacts(input.candidate) });
  if (input.candidate.cuda_visible_devices) facts.push({ label: 'CUDA_VISIBLE_DEVICES', value: input.candidate.cuda_visible_devices, code: true });
  const notes: string[] = [];
  const chart = mermaidChart(input);
  const regressions = input.comparison?.regressions ?? [];
  if (input.comparison) {
    notes.push(
      regressions.length === 0
        ? `Passed: no GEMM or transfer figure fell more than ${formatPercent(input.maxRegression)} below the baseline.`
        : `Failed: ${regressions.length} figure(s) fell more than ${formatPercent(input.maxRegression)} below the baseline.`,
    );
  }
  return {
    title: 'build-image: smoke test',
    facts,
    table: { caption: 'Benchmark', header: ['Metric', 'Baseline', 'New image', 'Ratio'], rows: metricRows(input) },
    charts: chart ? [chart] : [],
    notes,
  };
}

/** `smoke-formats: sif,sqsh`: the same payload's figures for each format, one column each. */
export function formatsSummary(runs: { format: string; image: string; launcher: string; report: PayloadReport }[]): Summary {
  const keys = orderedKeys(runs[0].report, runs[1]?.report);
  const rows = keys.map((key) => {
    const info = metricInfo(key);
    return [`${info.label}${info.better === 'lower' ? ' (lower is better)' : ''}`, ...runs.map((r) => cell(figures(r.report)[key], info.unit))];
  });
  return {
    title: 'build-image: smoke test by format',
    facts: runs.map((r) => ({ label: r.format, value: `${r.image} (${r.launcher})`, code: true })),
    table: { caption: 'The same payload in each format', header: ['Metric', ...runs.map((r) => r.format)], rows },
  };
}
