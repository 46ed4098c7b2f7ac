// The docs pull request's description: what row changes, where the image came from, how it fared in the
// smoke test. Pure; bounded well under GitHub's 65536-character limit on a pull request body.
import { formatBytes } from '../report/summary.js';

export interface PrBodyInfo {
  software: string;
  oldPath?: string;
  newPath: string;
  /** The enroot image published beside it (`formats: sif,sqsh`), with its sha256. */
  sqsh?: { path: string; sha256?: string };
  sha256?: string;
  size?: number;
  sourceUri?: string;
  sourceDigest?: string;
  buildKey?: string;
  /** A Markdown table (or any Markdown) with the smoke results; cut to fit when too long. */
  smokeMarkdown?: string;
  runUrl?: string;
}

/** Total length the body keeps under; GitHub refuses bodies over 65536 characters. */
export const PR_BODY_LIMIT = 60_000;
// No single value (a path, a URI) gets to crowd out the rest.
const VALUE_LIMIT = 1_000;

export function prBody(info: PrBodyInfo): string {
  const head: string[] = [`Updates the **${inline(info.software)}** row of the preset images table.`, ''];
  head.push(info.oldPath ? `- Location: ${code(info.oldPath)} → ${code(info.newPath)}` : `- Location: ${code(info.newPath)} (new row)`);
  if (info.sqsh) head.push(`- enroot image (\`srun --container-image\`): ${code(info.sqsh.path)}${info.sqsh.sha256 ? `, sha256 ${code(info.sqsh.sha256)}` : ''}`);
  const image: string[] = [];
  if (info.sha256) image.push(`- sha256: ${code(info.sha256)}`);
  if (info.size !== undefined) image.push(`- Size: ${formatBytes(info.size)}`);
  if (info.sourceUri) image.push(`- Source: ${code(info.sourceUri)}`);
  if (info.sourceDigest) image.push(`- Source digest: ${code(info.sourceDigest)}`);
  if (info.buildKey) image.push(`- Build key: ${code(info.buildKey)}`);
  if (image.length) head.push('', '### Image', '', ...image);

  const tail: string[] = ['', '---', info.runUrl ? `Opened by build-image from [this workflow run](${info.runUrl}).` : 'Opened by build-image.', ''];

  let smoke: string[] = [];
  const smokeText = info.smokeMarkdown?.trim();
  if (smokeText) {
    const fixed = [...head, '', '### Smoke test', '', ...tail].join('\n').length + 1;
    smoke = ['', '### Smoke test', '', fit(smokeText, PR_BODY_LIMIT - fixed)];
  }
  const body = [...head, ...smoke, ...tail].join('\n');
  // Only over-long single values could still get here; a hard cut keeps GitHub from refusing the body.
  return body.length <= PR_BODY_LIMIT ? body : `${body.slice(0, PR_BODY_LIMIT - 40)}\n\n_(description truncated)_\n`;
}

/** Cuts Markdown at a line boundary to fit `room` characters, closing an open code fence, with a note. */
function fit(markdown: string, room: number): string {
  if (markdown.length <= room) return markdown;
  const note = (shown: number) => `\n\n_Smoke results truncated: ${shown} of ${markdown.length} characters shown; the workflow run has them all._`;
  const budget = Math.max(0, room - note(markdown.length).length - 8);
  const cut = markdown.lastIndexOf('\n', budget);
  let kept = markdown.slice(0, cut > 0 ? cut : budget);
  if ((kept.match(/^\s*(```|~~~)/gm) ?? []).length % 2 === 1) kept += '\n```';
  return kept + note(kept.length);
}

/** A value as inline code, whatever backticks it holds; one line, bounded. */
function code(value: string): string {
  const text = clip(value.replace(/\s*\n\s*/g, ' '));
  const longest = Math.max(0, ...(text.match(/`+/g) ?? []).map((run) => run.length));
  const fence = '`'.repeat(longest + 1);
  const pad = text.startsWith('`') || text.endsWith('`') ? ' ' : '';
  return `${fence}${pad}${text}${pad}${fence}`;
}

/** Plain text in running Markdown, with the characters that would start formatting escaped. */
function inline(value: string): string {
  return clip(value.replace(/\s*\n\s*/g, ' ')).replace(/[\\`*_[\]<>#|~]/g, '\\$&');
}

function clip(value: string): string {
  return value.length <= VALUE_LIMIT ? value : `${value.slice(0, VALUE_LIMIT - 1)}…`;
}
