// Long inputs through the tool, timed. Section `tables`: the docs table edit (editTableBytes, as the CLI runs it)
// on documents of 1 MB and 20 MB of table rows, in an RST simple table, an RST grid table and a Markdown table,
// once replacing a value that fits its column and once a longer path (12 columns wider than the column, as a new
// CUDA build's name would be), which widens the column so that every line of the table is written anew. Each edit runs in its own child process,
// so that its peak memory (maxRSS) is its own; a child that only reads the file gives the baseline for `extra_mb`,
// and one that reads it and makes one copy of it the floor no edit can go under (the input the caller holds and
// the new document it gets back): `floor_mb`.
// Goals: time linear in size (20 MB within 25x of 1 MB) and peak memory under 200 MB.
// Section `launcher` (scripts/bench-streams-launcher.mjs): a 10 MB and a 50 MB single-line launcher output read
// through the process runner, against a plain reader that only counts the bytes.
// Usage: node scripts/bench-streams.mjs [launcher] [tables] [--json]
import { build } from 'esbuild';
import { benchLauncher } from './bench-streams-launcher.mjs';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const json = process.argv.includes('--json');
const wanted = process.argv.slice(2).filter((a) => !a.startsWith('--'));

const GOAL_RATIO = 25;
const GOAL_PEAK_MB = 200;

/** A document of `mb` megabytes that is one long table (the centre's header, rows of software -> image path). */
function tableDocument(format, mb) {
  const target = mb * 1024 * 1024;
  const kw = 24;
  const vw = 60;
  const rows = [];
  let size = 0;
  for (let i = 0; size < target; i++) {
    const key = `software-${i}`;
    const value = `/lustre/share/img/software-${i}-24.05-py3.simg`;
    const row =
      format === 'rst-simple'
        ? `${key.padEnd(kw)} ${value}`
        : format === 'rst-grid'
          ? `| ${key.padEnd(kw - 2)} | ${value.padEnd(vw - 2)} |\n+${'-'.repeat(kw)}+${'-'.repeat(vw)}+`
          : `| ${key.padEnd(kw - 2)} | ${value.padEnd(vw - 2)} |`;
    rows.push(row);
    size += Buffer.byteLength(row) + 1;
  }
  const title = format === 'markdown' ? ['# 预置镜像', ''] : ['预置镜像', '========', ''];
  if (format === 'rst-simple') {
    const border = `${'='.repeat(kw)} ${'='.repeat(vw)}`;
    return [...title, border, `${'软件'.padEnd(kw - 2)} 位置`, border, ...rows, border, ''].join('\n');
  }
  if (format === 'rst-grid') {
    const line = (ch) => `+${ch.repeat(kw)}+${ch.repeat(vw)}+`;
    return [...title, line('-'), `| ${'软件'.padEnd(kw - 4)} | ${'位置'.padEnd(vw - 4)} |`, line('='), ...rows, ''].join('\n');
  }
  return [...title, `| ${'软件'.padEnd(kw - 4)} | ${'位置'.padEnd(vw - 4)} |`, `| ${'-'.repeat(kw - 2)} | ${'-'.repeat(vw - 2)} |`, ...rows, ''].join('\n');
}

/** The child: reads the file, edits it (unless `read-only`), and reports the edit's seconds and its peak memory. */
const CHILD = `
import { readFileSync } from 'node:fs';
const [moduleFile, file, syntax, key, value] = process.argv.slice(2);
const { editTableBytes } = await import(moduleFile);
const bytes = readFileSync(file);
let seconds = 0, operation = key, size = bytes.length;
if (key === 'floor') {
  globalThis.copy = Buffer.from(bytes);
} else if (key !== 'read-only') {
  const start = process.hrtime.bigint();
  const result = editTableBytes(bytes, { key, value, syntax });
  seconds = Number(process.hrtime.bigint() - start) / 1e9;
  operation = result.operation;
  size = result.bytes.length;
}
console.log(JSON.stringify({ seconds, operation, size, maxRSS: process.resourceUsage().maxRSS * 1024 }));
`;

function runChild(dir, moduleFile, file, syntax, key, value) {
  const r = spawnSync(process.execPath, [path.join(dir, 'child.mjs'), moduleFile, file, syntax, key, value], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`the edit of ${file} failed: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

async function benchTables() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-bench-tables-'));
  try {
    const moduleFile = path.join(dir, 'table.mjs');
    await build({ entryPoints: [path.join(root, 'src/docs/table.ts')], bundle: true, format: 'esm', platform: 'node', outfile: moduleFile, logLevel: 'warning' });
    writeFileSync(path.join(dir, 'child.mjs'), CHILD);
    const edits = {
      fits: '/lustre/share/img/new-24.06.simg',
      widens: '/lustre/share/img/software-7-24.05-py3-cuda12.4-cudnn9-nccl2.21.simg',
    };
    const results = [];
    for (const format of ['rst-simple', 'rst-grid', 'markdown']) {
      const syntax = format === 'markdown' ? 'markdown' : 'rst';
      for (const mb of [1, 20]) {
        const file = path.join(dir, `${format}-${mb}.txt`);
        writeFileSync(file, tableDocument(format, mb));
        const baseline = runChild(dir, moduleFile, file, syntax, 'read-only', '');
        const floor = runChild(dir, moduleFile, file, syntax, 'floor', '');
        for (const [edit, value] of Object.entries(edits)) {
          const r = runChild(dir, moduleFile, file, syntax, 'software-7', value);
          if (r.operation !== 'replaced') throw new Error(`${format} ${mb} MB: the edit was ${r.operation}, not replaced`);
          results.push({
            format,
            size_mb: mb,
            edit,
            seconds: Number(r.seconds.toFixed(3)),
            peak_mb: Math.round(r.maxRSS / 1048576),
            extra_mb: Math.round((r.maxRSS - baseline.maxRSS) / 1048576),
            floor_mb: Math.round(floor.maxRSS / 1048576),
          });
        }
      }
    }
    const summary = [];
    for (const format of ['rst-simple', 'rst-grid', 'markdown']) {
      for (const edit of Object.keys(edits)) {
        const [small, large] = [1, 20].map((mb) => results.find((r) => r.format === format && r.edit === edit && r.size_mb === mb));
        const ratio = large.seconds / Math.max(small.seconds, 1e-3);
        summary.push({ format, edit, time_ratio_20_to_1: Number(ratio.toFixed(1)), linear: ratio <= GOAL_RATIO, peak_mb: large.peak_mb, floor_mb: large.floor_mb, peak_ok: large.peak_mb < GOAL_PEAK_MB });
      }
    }
    return { results, summary, goals: { time_ratio_20_to_1: `<= ${GOAL_RATIO}`, peak_mb: `< ${GOAL_PEAK_MB}` } };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const sections = { launcher: benchLauncher, tables: benchTables };
const out = {};
for (const name of wanted.length ? wanted : Object.keys(sections)) {
  if (!sections[name]) throw new Error(`no section ${name}; sections: ${Object.keys(sections).join(', ')}`);
  out[name] = await sections[name]();
}
if (json) {
  console.log(JSON.stringify(out));
} else {
  for (const [name, r] of Object.entries(out.launcher ?? {})) {
    if (typeof r !== 'object') continue;
    console.log(`launcher ${name}: ${r.ours_s.toFixed(2)} s, peak ${Math.round(r.ours_peak_mib)} MiB (plain reader ${r.plain_s.toFixed(2)} s, ${Math.round(r.plain_peak_mib)} MiB; ratio ${r.ratio.toFixed(2)})`);
  }
  if (out.launcher) console.log(`launcher: 50 MB / 10 MB time ${out.launcher.time_growth_50_over_10.toFixed(1)}x (goal <= 6x), peak under ${GOAL_PEAK_MB} MB`);
  for (const r of out.tables?.results ?? []) {
    console.log(`${r.format.padEnd(10)} ${String(r.size_mb).padStart(2)} MB ${r.edit.padEnd(6)} ${r.seconds.toFixed(2).padStart(6)} s  peak ${String(r.peak_mb).padStart(4)} MB (+${r.extra_mb} MB over reading the file; floor ${r.floor_mb} MB)`);
  }
  for (const s of out.tables?.summary ?? []) {
    console.log(`${s.format.padEnd(10)} ${s.edit.padEnd(6)} 20 MB / 1 MB time ${s.time_ratio_20_to_1}x ${s.linear ? 'ok' : 'NOT LINEAR'}; peak ${s.peak_mb} MB ${s.peak_ok ? 'ok' : 'OVER GOAL'} (floor ${s.floor_mb} MB)`);
  }
  if (out.tables) console.log(`goals: 20 MB within ${GOAL_RATIO}x of 1 MB, peak under ${GOAL_PEAK_MB} MB`);
}
