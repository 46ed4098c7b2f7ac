// A stage's summary as data, rendered as Markdown for the job summary and as aligned text for the terminal.

export interface Summary {
  title: string;
  /** Ordered facts: label and value. Values are shown as code when `code` is set. */
  facts: { label: string; value: string; code?: boolean }[];
  /** Optional table, e.g. lint findings. */
  table?: { caption: string; header: string[]; rows: string[][] };
  /** Charts as Markdown (mermaid blocks): shown in the job summary and PR bodies, left out of plain text. */
  charts?: string[];
  notes?: string[];
}

function escapeCell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

export function renderMarkdown(summary: Summary): string {
  const out: string[] = [`## ${summary.title}`, '', '| | |', '|---|---|'];
  for (const f of summary.facts) {
    const value = f.code ? `\`${f.value.replace(/`/g, "'")}\`` : escapeCell(f.value);
    out.push(`| ${escapeCell(f.label)} | ${value} |`);
  }
  if (summary.table && summary.table.rows.length > 0) {
    const t = summary.table;
    out.push('', `**${t.caption}**`, '', `| ${t.header.map(escapeCell).join(' | ')} |`, `|${t.header.map(() => '---').join('|')}|`);
    for (const row of t.rows) out.push(`| ${row.map(escapeCell).join(' | ')} |`);
  }
  for (const chart of summary.charts ?? []) out.push('', chart);
  for (const note of summary.notes ?? []) out.push('', note);
  return out.join('\n') + '\n';
}

export function renderText(summary: Summary): string {
  const width = Math.max(...summary.facts.map((f) => f.label.length), 0);
  const out: string[] = [summary.title, '='.repeat(summary.title.length)];
  for (const f of summary.facts) out.push(`${f.label.padEnd(width)}  ${f.value}`);
  if (summary.table && summary.table.rows.length > 0) {
    const t = summary.table;
    // Columns padded to their widest cell: figures (cells that start with a number, or "-") aligned right, text left.
    const lines = [t.header, ...t.rows];
    const widths = t.header.map((_, i) => Math.max(...lines.map((row) => (row[i] ?? '').length)));
    const numeric = t.header.map((_, i) => t.rows.every((row) => /^([-+]?\d|[-—]$)/.test(row[i] ?? '-')));
    const line = (row: string[]) => row.map((cell, i) => (numeric[i] ? cell.padStart(widths[i]) : cell.padEnd(widths[i]))).join('  ').trimEnd();
    out.push('', `${t.caption}:`, `  ${line(t.header)}`, `  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
    for (const row of t.rows) out.push(`  ${line(row)}`);
  }
  for (const note of summary.notes ?? []) out.push('', note);
  return out.join('\n') + '\n';
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value >= 100 ? 0 : 1)} ${units[unit]} (${bytes} bytes)`;
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  const s = Math.round(seconds - m * 60);
  return `${m} min ${s} s`;
}
