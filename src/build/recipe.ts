// The definition the builder actually runs: for a URI source, a two-line recipe around the pinned source; for a
// definition file, the user's file with bases pinned to their resolved digests and provenance labels added to
// the final stage. Pure text transformations; line numbers the user sees stay those of their own file.
import { header, parseDefinition, type Definition, type Stage } from './definition.js';
import { formatImageRef, parseImageRef, type Source } from './source.js';
import { LABEL_PREFIX, LABELS, labelLines } from './labels.js';

/** Bootstrap agents whose `From` is a registry reference we can resolve to a digest. */
const REGISTRY_AGENTS = new Set(['docker', 'oras']);
/** Agents whose `From` is a local file whose sha256 is its digest. */
const FILE_AGENTS = new Set(['docker-archive', 'oci-archive', 'localimage']);

/**
 * A `%setup` body (run on the host, with only shell builtins) that removes every provenance label from the labels
 * the base image brought, before apptainer adds this build's own from `%labels`: a label the tool cannot know (no
 * definition, no run URL off Actions) must not survive from the base, and one it knows must not be the base's.
 * Lines of apptainer's indented labels.json are filtered one by one; the comma before the closing brace is fixed.
 */
export const SCRUB_INHERITED_LABELS: string[] = [
  'f="${APPTAINER_ROOTFS:-$SINGULARITY_ROOTFS}/.singularity.d/labels.json"',
  'if [ -f "$f" ]; then',
  "    nl=$(printf '\\nx'); nl=${nl%x}; out=''; prev=''; compact=''",
  '    while IFS= read -r line || [ -n "$line" ]; do',
  '        case "$line" in',
  "            '{'*'}'*) compact=1 ;;",
  `            *'"${LABELS.source}"'*|*'"${LABELS.revision}"'*|*'"${LABELS.created}"'*|*'"${LABEL_PREFIX}.'*) if [ -z "$compact" ]; then continue; fi ;;`,
  "            '}'*) prev=${prev%,} ;;",
  '        esac',
  '        if [ -n "$prev" ]; then out="$out$prev$nl"; fi',
  '        prev=$line',
  '    done < "$f"',
  "    if [ -z \"$compact\" ]; then printf '%s%s\\n' \"$out\" \"$prev\" > \"$f\"; fi",
  'fi',
];

export function recipeForSource(source: Source, digest: string, labels: Record<string, string>): string {
  let bootstrap: string;
  let from: string;
  switch (source.kind) {
    case 'docker':
    case 'oras':
      bootstrap = source.kind;
      from = formatImageRef({ ...source.ref, digest }, { pinned: true });
      break;
    case 'docker-archive':
    case 'oci-archive':
      bootstrap = source.kind;
      from = source.path;
      break;
    case 'sif':
      bootstrap = 'localimage';
      from = source.path;
      break;
  }
  return [`Bootstrap: ${bootstrap}`, `From: ${from}`, '', '%setup', ...indent(SCRUB_INHERITED_LABELS), '', '%labels', ...labelLines(labels), ''].join('\n');
}

function indent(lines: string[]): string[] {
  return lines.map((l) => `    ${l}`);
}

/** A stage base that can be resolved to a content digest. */
export interface StageBase {
  stageIndex: number;
  agent: string;
  /** The `From` value with build arguments substituted. */
  from: string;
  line: number;
  kind: 'registry' | 'file';
}

/** Substitutes `{{ NAME }}` the way apptainer does, from build args then `%arguments` defaults. */
export function substitute(text: string, args: Record<string, string>, defaults: Record<string, string>): string {
  return text.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (whole, name: string) => args[name] ?? defaults[name] ?? whole);
}

export function stageBases(def: Definition, buildArgs: Record<string, string>): StageBase[] {
  const bases: StageBase[] = [];
  def.stages.forEach((stage, stageIndex) => {
    const agent = (header(stage, 'Bootstrap') ?? '').toLowerCase();
    const fromEntry = stage.headers.find((h) => h.key.toLowerCase() === 'from');
    if (!fromEntry) return;
    // %arguments defaults apply to their own stage only, as in apptainer.
    const from = substitute(fromEntry.value, buildArgs, stage.argumentsDefaults);
    if (from.includes('{{')) return;
    if (REGISTRY_AGENTS.has(agent)) bases.push({ stageIndex, agent, from, line: fromEntry.line, kind: 'registry' });
    else if (FILE_AGENTS.has(agent)) bases.push({ stageIndex, agent, from, line: fromEntry.line, kind: 'file' });
  });
  return bases;
}

/**
 * The user's definition with each resolved registry base pinned (`From: ref@sha256:...`) and the labels
 * appended to the final stage's `%labels` (or a new `%labels` section at its end). Line endings are kept.
 */
export function augmentDefinition(
  text: string,
  pins: Map<number, string>,
  labels: Record<string, string>,
): string {
  const bom = text.startsWith('\uFEFF') ? '\uFEFF' : '';
  const body = bom ? text.slice(1) : text;
  const eol = body.includes('\r\n') ? '\r\n' : '\n';
  const lines = body.split(/\r?\n/);
  const def = parseDefinition(text);
  for (const [line, pinned] of pins) {
    const index = line - 1;
    lines[index] = lines[index].replace(/^(\s*from\s*:\s*).*$/i, `$1${pinned}`);
  }
  const last: Stage | undefined = def.stages[def.stages.length - 1];
  const labelSection = last?.sections.filter((s) => s.name === 'labels').pop();
  const added = labelLines(labels);
  const setupSection = last?.sections.filter((s) => s.name === 'setup').pop();
  // Insertions from the bottom up, so the line numbers of the earlier one stay right.
  const inserts: [number, string[]][] = [];
  if (labelSection) inserts.push([labelSection.endLine, added]);
  if (setupSection) inserts.push([setupSection.endLine, indent(SCRUB_INHERITED_LABELS)]);
  for (const [at, extra] of inserts.sort((a, b) => b[0] - a[0])) lines.splice(at, 0, ...extra);
  if (!labelSection || !setupSection) {
    // Drop trailing empty lines so the new sections follow the file's last content.
    while (lines.length > 0 && lines[lines.length - 1].trim() === '') lines.pop();
    if (!setupSection) lines.push('', '%setup', ...indent(SCRUB_INHERITED_LABELS));
    if (!labelSection) lines.push('', '%labels', ...added);
  }
  return bom + lines.join(eol) + eol;
}

/** Pins a registry reference to a digest, keeping the registry host and repository as written. */
export function pinReference(from: string, digest: string): string {
  const bare = from.replace(/^(docker|oras):\/\//, '');
  parseImageRef(bare); // throws a clear message for a malformed reference
  const unpinned = bare.replace(/@sha256:[0-9a-f]{64}$/, '');
  const lastSlash = unpinned.lastIndexOf('/');
  const colon = unpinned.lastIndexOf(':');
  return `${colon > lastSlash ? unpinned.slice(0, colon) : unpinned}@${digest}`;
}
