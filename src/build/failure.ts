// Says where in the user's definition a failed build failed. Apptainer reports a failed scriptlet as
// "while running %post section: exit status 1" after the shell's trace (`sh -e -x`) of the commands it ran, and
// names the file it built from, which is the tool's temporary recipe: both are turned into the user's file and line.
import { parseDefinition, splitLines } from './definition.js';

export interface FailedScriptlet {
  /** `post`, `setup`, `test`, ... */
  section: string;
  status: number;
  /** `FILE:LINE` of the failing command, or of the section when the command is not found in it. */
  where: string;
  /** The failing command, as the shell traced it (after expansion). */
  command?: string;
}

/** The scriptlet sections the builder started, in order, from its `Running post scriptlet` lines. */
export function scriptletStarted(line: string): string | undefined {
  return /^INFO:\s+Running (\w+) scriptlet$/.exec(line.trim())?.[1]?.toLowerCase();
}

/**
 * Locates a failed scriptlet: `started` lists the scriptlets the builder announced (a multi-stage build runs one
 * `%post` per stage, in file order), `tail` is the end of its output.
 */
export function locateScriptletFailure(tail: string[], started: string[], definitionText: string, definitionPath: string): FailedScriptlet | undefined {
  const fatal = tail.map((l) => /while running %(\w+) section: exit status (\d+)/.exec(l)).find(Boolean);
  if (!fatal) return undefined;
  const section = fatal[1].toLowerCase();
  const status = Number(fatal[2]);
  const ofName = parseDefinition(definitionText)
    .stages.flatMap((s) => s.sections)
    .filter((s) => s.name === section && !s.app);
  const nth = started.filter((s) => s === section).length;
  const found = ofName[Math.min(Math.max(nth, 1), ofName.length) - 1];
  if (!found) return { section, status, where: definitionPath };
  const bodyLines = splitLines(found.body);
  // The shell names the script's line when it fails before tracing the command (a redirection to a missing
  // directory, a syntax error): `/.post.script: line 3: can't create /opt/x: nonexistent directory`.
  const scriptLine = new RegExp(`/\\.${section}\\.script: line (\\d+):`);
  const shellLine = [...tail].reverse().map((l) => scriptLine.exec(l)).find(Boolean);
  const scriptIndex = shellLine ? Number(shellLine[1]) - 1 : -1;
  if (scriptIndex >= 0 && scriptIndex < bodyLines.length) {
    return { section, status, where: `${definitionPath}:${found.bodyStartLine + scriptIndex}`, command: bodyLines[scriptIndex].trim() };
  }
  // With -e the last traced command is the one that failed; stdout and stderr interleave, so search backwards.
  const traced = [...tail].reverse().find((l) => /^\++ /.test(l) && !/^\+ set [+-]/.test(l));
  const command = traced?.replace(/^\++ /, '').trim();
  const index = command === undefined ? -1 : bodyLines.findIndex((l) => l.trim() === command);
  const line = index >= 0 ? found.bodyStartLine + index : found.line;
  return { section, status, where: `${definitionPath}:${line}`, command };
}

/** Replaces the temporary recipe's path with the user's definition in the builder's words. */
export function inUserTerms(lines: string[], recipePath: string, definitionPath: string | undefined): string[] {
  if (!definitionPath) return lines;
  return lines.map((l) => l.split(recipePath).join(definitionPath));
}

/** The lines of a builder's output that explain a failure: its FATAL/ERROR lines and what precedes them. */
export function errorLines(tail: string[]): string[] {
  const firstError = tail.findIndex((l) => /^(FATAL|ERROR)/.test(l.trim()));
  const from = firstError < 0 ? Math.max(0, tail.length - 12) : Math.max(0, firstError - 8);
  return tail.slice(from).filter((l) => l.trim() !== '');
}
