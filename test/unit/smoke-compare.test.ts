import { describe, expect, test } from '@jest/globals';
import { compareReports, describeRegression, figures, parsePayloadOutput, readPayloadReport, type PayloadReport } from '../../src/smoke/compare.js';
import { mermaidChart, metricRows, smokeJson, smokeSummary } from '../../src/smoke/report.js';
import { renderMarkdown } from '../../src/report/summary.js';

// Figures as the payload printed them natively on an H200 (REAL-COMPONENTS.md).
const h200: PayloadReport = {
  smoke: 'build-image/pytorch-smoke',
  schema: 1,
  ok: true,
  python: '3.12.3',
  torch: '2.11.0',
  cuda: '13.0',
  cudnn: '9.10.2',
  nccl: '2.27.7',
  gpus: [{ index: 0, name: 'NVIDIA H200', memory_bytes: 150_110_011_392 }],
  import_torch_seconds: 2.7,
  cuda_init_seconds: 0.13,
  start_latency_seconds: 0.105,
  metrics: { gemm_bf16_tflops: 790, gemm_tf32_tflops: 400, gemm_fp16_tflops: 760, h2d_gbps: 55.4, d2h_gbps: 55.3, cpu_gemm_fp32_gflops: 900 },
};

function slower(report: PayloadReport, factor: Record<string, number>): PayloadReport {
  const metrics = { ...report.metrics };
  for (const [k, f] of Object.entries(factor)) metrics[k] = metrics[k] * f;
  return { ...report, metrics };
}

describe('the payload line', () => {
  test('is found among other output, last one wins', () => {
    const line = JSON.stringify(h200);
    expect(parsePayloadOutput(`INFO: something\n${line}\nGPU 0: NVIDIA H200\n`)?.torch).toBe('2.11.0');
    expect(parsePayloadOutput('{"not":"ours"}\nplain text')).toBeUndefined();
    expect(parsePayloadOutput('{"smoke":"build-image/pytorch-smoke", broken')).toBeUndefined();
  });

  test('figures flatten metrics and timings, skipping missing ones', () => {
    expect(figures({ ok: true, metrics: { a: 1 }, import_torch_seconds: 2, cuda_init_seconds: null })).toEqual({ a: 1, import_torch_seconds: 2 });
  });
});

describe('the baseline gate', () => {
  test('the same figures pass with ratios of 1', () => {
    const c = compareReports(h200, h200, 0.1);
    expect(c.passed).toBe(true);
    expect(c.ratios.gemm_bf16_tflops).toBe(1);
    expect(c.ratios.start_latency_seconds).toBe(1);
  });

  test('a GEMM 22 % slower than the baseline fails at 10 % and names the figure', () => {
    const c = compareReports(slower(h200, { gemm_bf16_tflops: 0.78 }), h200, 0.1);
    expect(c.passed).toBe(false);
    expect(c.regressions).toHaveLength(1);
    expect(c.regressions[0]).toMatchObject({ metric: 'gemm_bf16_tflops', baseline: 790 });
    expect(describeRegression(c.regressions[0], 0.1)).toBe(
      'bf16 GEMM (gemm_bf16_tflops): 616 TFLOP/s vs baseline 790 TFLOP/s (-22.0 %, more than the allowed 10 %)',
    );
  });

  test('a slowdown within the allowance passes; a faster candidate passes', () => {
    expect(compareReports(slower(h200, { h2d_gbps: 0.92 }), h200, 0.1).passed).toBe(true);
    expect(compareReports(slower(h200, { gemm_tf32_tflops: 1.5 }), h200, 0.1).passed).toBe(true);
  });

  test('durations get ratios but are not gated', () => {
    const c = compareReports({ ...h200, import_torch_seconds: 27 }, h200, 0.1);
    expect(c.ratios.import_torch_seconds).toBe(10);
    expect(c.passed).toBe(true);
  });

  test('a GPU figure the baseline has and the new image lacks is a regression', () => {
    const cpuOnly: PayloadReport = { ...h200, gpus: [], metrics: { cpu_gemm_fp32_gflops: 900 } };
    const c = compareReports(cpuOnly, h200, 0.1);
    expect(c.regressions.map((r) => r.metric)).toEqual(['gemm_bf16_tflops', 'gemm_tf32_tflops', 'gemm_fp16_tflops', 'h2d_gbps', 'd2h_gbps']);
    expect(describeRegression(c.regressions[0], 0.1)).toMatch(/missing in the new image/);
  });
});

describe('the report', () => {
  const candidate = slower(h200, { gemm_bf16_tflops: 0.5 });
  const input = { image: 'new.sif', baselineImage: 'old.sif', launcher: 'sbatch', candidate, baseline: h200, comparison: compareReports(candidate, h200, 0.1), maxRegression: 0.1 };

  test('a table row per metric: baseline, new image, ratio, regressions marked', () => {
    const rows = metricRows(input);
    expect(rows[0]).toEqual(['bf16 GEMM', '790 TFLOP/s', '395 TFLOP/s', '0.50× ❌']);
    expect(rows.find((r) => r[0].startsWith('H2D'))).toEqual(['H2D pinned', '55.4 GB/s', '55.4 GB/s', '1.00×']);
    expect(rows.find((r) => r[0].startsWith('import torch'))).toEqual(['import torch (lower is better)', '2.70 s', '2.70 s', '1.00×']);
  });

  test('a mermaid xychart-beta bar chart: baseline at 100 %, the new image beside it', () => {
    expect(mermaidChart(input)).toBe(
      [
        '```mermaid',
        'xychart-beta',
        '    title "Throughput, % of baseline (first bar: baseline, second: new image)"',
        '    x-axis ["bf16 GEMM", "tf32 GEMM", "fp16 GEMM", "H2D pinned", "D2H pinned", "CPU fp32 GEMM"]',
        '    y-axis "% of baseline" 0 --> 110',
        '    bar [100, 100, 100, 100, 100, 100]',
        '    bar [50, 100, 100, 100, 100, 100]',
        '```',
      ].join('\n'),
    );
  });

  test('without a baseline the chart shows the values and the table leaves baseline and ratio empty', () => {
    const alone = { image: 'new.sif', launcher: 'direct', candidate: { ok: true, metrics: { cpu_gemm_fp32_gflops: 41.234 } }, maxRegression: 0.1 };
    expect(mermaidChart(alone)).toContain('bar [41.23]');
    expect(metricRows(alone)).toEqual([['CPU fp32 GEMM', '—', '41.2 GFLOP/s', '—']]);
  });

  test('the Markdown summary has the facts, the table, the chart and the verdict', () => {
    const md = renderMarkdown(smokeSummary(input));
    expect(md).toContain('| Software | Python 3.12.3, torch 2.11.0, CUDA 13.0, cuDNN 9.10.2, NCCL 2.27.7 |');
    expect(md).toContain('| GPUs | NVIDIA H200 (140 GiB) |');
    expect(md).toContain('| Metric | Baseline | New image | Ratio |');
    expect(md).toContain('```mermaid\nxychart-beta');
    expect(md).toContain('Failed: 1 figure(s) fell more than 10 % below the baseline.');
  });

  test('smoke-json carries both reports, the ratios and the verdict', () => {
    const json = JSON.parse(smokeJson(input));
    expect(json).toMatchObject({ image: 'new.sif', baseline_image: 'old.sif', passed: false, max_regression: 0.1 });
    expect(json.ratios.gemm_bf16_tflops).toBe(0.5);
    expect(json.candidate.metrics.gemm_bf16_tflops).toBe(395);
    expect(json.regressions[0].metric).toBe('gemm_bf16_tflops');
  });
});

describe('the gate in exact terms', () => {
  test('a drop exactly equal to max-regression passes; a hair more fails', () => {
    const base = { ok: true, metrics: { gemm_bf16_tflops: 100 } } as PayloadReport;
    expect(compareReports({ ok: true, metrics: { gemm_bf16_tflops: 30 } }, base, 0.7).passed).toBe(true);
    expect(compareReports({ ok: true, metrics: { gemm_bf16_tflops: 90 } }, base, 0.1).passed).toBe(true);
    expect(compareReports({ ok: true, metrics: { gemm_bf16_tflops: 89.99 } }, base, 0.1).passed).toBe(false);
  });

  test('a report is only a report with a boolean ok and numeric metrics', () => {
    expect(readPayloadReport('{"smoke":"build-image/pytorch-smoke","ok":"false"}').problem).toBe('the report\'s "ok" is "false", not true or false');
    expect(readPayloadReport('{"smoke":"build-image/pytorch-smoke","ok":true}').report?.ok).toBe(true);
    expect(readPayloadReport('no marker here')).toEqual({});
  });
});
