// Lints an Apptainer definition file before a build: errors where apptainer 1.4 would reject the
// file or the build would surely fail, warnings for likely mistakes. Pure: text in, findings out.

import { closest } from '../util/closest.js';
import { HeaderChecks, lastHeader } from './lint-headers.js';
import { appSections, BUILD_SCRIPTS, ENTRY_POINTS, SECTIONS, SHELL_ARG_SECTIONS, SHELL_SECTIONS } from './lint-vocabulary.js';
import { homeInstall, needsYes, networkFetch, shellCommands, stripComment, unterminatedHeredoc } from './lint-shell.js';
import { isReservedLabel } from './labels.js';
import { posix } from 'node:path';
import {
  hasBom,
  parseArguments,
  parseDefinition,
  splitLines,
  type Section,
  type Stage,
} from './definition.js';

/** bufio.MaxScanTokenSize, the largest section apptainer's definition parser reads. */
const MAX_SECTION_BYTES = 64 * 1024;

import type { Finding } from './lint-headers.js';

export type { Finding, Severity } from './lint-headers.js';

export interface LintOptions {
  /** Values given with --build-arg. */
  buildArgs?: Record<string, string>;
  /**
   * Apptainer refuses build args the file never uses unless --warn-unused-build-args is given;
   * set this when the build passes that flag, to report them as warnings instead of errors.
   */
  warnUnusedBuildArgs?: boolean;
  /** The build is skipped when the published image has the same build key (SFTP set, `force` off). */
  skipping?: boolean;
  /** `key-inputs` is given: what %post fetches is accounted for. */
  keyInputs?: boolean;
}

/** `file:line: severity: message`, or `file:line:col: severity: message` when the column is known. */
export function formatFinding(file: string, f: Finding): string {
  const where = f.column === undefined ? `${file}:${f.line}` : `${file}:${f.line}:${f.column}`;
  return `${where}: ${f.severity}: ${f.message}`;
}

export function lintDefinition(text: string, options: LintOptions = {}): Finding[] {
  const def = parseDefinition(text);
  const lint = new Linter(def, splitLines(text), options.buildArgs ?? {});

  if (hasBom(text)) {
    lint.error(1, 'byte-order-mark', 'the file starts with a UTF-8 byte-order mark, which apptainer reads as part of the first header key; save it without BOM', 1);
  }
  if (def.stages.length === 0) {
    lint.error(1, 'empty-definition', 'no header and no sections: apptainer finds no stage in this file (start it with `Bootstrap: docker` and `From: IMAGE`)');
  }
  def.stages.forEach((stage, index) => {
    const suggested = lint.checkHeaders(stage);
    lint.checkBootstrap(stage, suggested);
    lint.checkSections(stage, index === def.stages.length - 1);
    lint.checkFilesFrom(stage, index);
  });
  lint.checkStageNames();
  lint.checkBuildArgs(options.warnUnusedBuildArgs === true);
  if (options.skipping && !options.keyInputs) lint.checkMovingTargets();

  return lint.findings
    .map((f, order) => ({ f, order }))
    .sort((a, b) => a.f.line - b.f.line || (a.f.column ?? 0) - (b.f.column ?? 0) || a.order - b.order)
    .map(({ f }) => f);
}

class Linter extends HeaderChecks {
  /** `isFinal`: the last stage is the image users run; earlier stages only feed it. */
  checkSections(stage: Stage, isFinal: boolean): void {
    const seen = new Map<string, Section>();
    for (const s of stage.sections) {
      if (!this.checkSectionLine(s)) continue;
      const key = s.app === undefined ? s.name : `${s.name} ${s.app}`;
      const first = seen.get(key);
      // Several %files sections are normal (one per source stage).
      if (first !== undefined && s.name !== 'files') {
        const label = s.app === undefined ? `%${s.name}` : `%${s.name} ${s.app}`;
        if (ENTRY_POINTS.has(s.name)) {
          this.warning(s.line, 'duplicate-section', `${label} appears again (first on line ${first.line}); apptainer joins both into one script`);
        } else if (s.args !== '' && first.args !== '' && s.args !== first.args) {
          this.warning(s.line, 'duplicate-section', `${label} appears again with other arguments (first on line ${first.line}); apptainer runs both bodies with only these arguments`);
        }
      }
      if (first === undefined) seen.set(key, s);
      if (s.name === 'labels' || s.name === 'applabels') this.checkLabels(s);
      this.checkSectionSize(s);
      if (s.name === 'arguments') this.checkArguments(s);
      if (s.name === 'files') this.checkFileLines(s);
      if (s.name === 'appfiles') this.checkAppFiles(s);
      if (SHELL_SECTIONS.has(s.name)) this.checkHeredocs(s);
      if (BUILD_SCRIPTS.has(s.name)) this.checkBuildScript(s, isFinal);
    }
  }

  /** Returns false when the section line itself is broken, so later checks would only add noise. */
  private checkSectionLine(s: Section): boolean {
    const label = `%${s.name}`;
    if (/^\s/.test(s.raw)) {
      this.error(s.line, 'section-syntax', `${label} must start at the beginning of the line; apptainer rejects an indented section line`, 1);
      return false;
    }
    const afterPercent = s.raw.replace(/^%+/, '');
    const writtenName = /^\S*/.exec(afterPercent)![0];
    const separator = afterPercent.charAt(writtenName.length);
    if (separator !== '' && separator !== ' ') {
      this.error(s.line, 'section-syntax', `use a space, not a tab, after ${label}; apptainer reads the tab as part of the section name`);
      return false;
    }
    if (!SECTIONS.includes(s.name)) {
      const guess = closest(s.name, SECTIONS);
      this.error(s.line, 'unknown-section', `unknown section %${s.name}${guess ? `; did you mean %${guess}?` : '; apptainer rejects the file'}`, 1);
      return false;
    }
    if (appSections.has(s.name)) {
      if (writtenName !== s.name) {
        this.error(s.line, 'section-syntax', `apptainer only recognises app sections in lowercase: write %${s.name}`, 1);
        return false;
      }
      if (s.app === undefined) {
        this.error(s.line, 'section-syntax', `%${s.name} needs an app name: %${s.name} NAME`, 1);
        return false;
      }
    }
    if (SHELL_ARG_SECTIONS.has(s.name)) {
      const params = s.args.split('#')[0].split(/\s+/).filter(Boolean);
      if (params[params.length - 1] === '-c') {
        this.error(s.line, 'section-syntax', `%${s.name} -c needs a shell after it, e.g. %${s.name} -c /bin/bash`);
      }
    }
    return true;
  }

  /**
   * Apptainer reads a section as one token of its definition scanner (Go's bufio.Scanner), at most 64 KiB: a larger
   * one fails with "token too long" and names a temporary recipe instead of this file.
   */
  private checkSectionSize(s: Section): void {
    const bytes = Buffer.byteLength(`%${s.name}${s.app ? ` ${s.app}` : ''}${s.args ? ` ${s.args}` : ''}\n${s.body}\n`);
    if (bytes > MAX_SECTION_BYTES) {
      this.error(
        s.line,
        'section-too-large',
        `%${s.name} is ${bytes} bytes; apptainer reads at most ${MAX_SECTION_BYTES} bytes per section ("token too long"): put the script in a file, add it with %files and run it from %${s.name}`,
      );
    }
  }

  private checkLabels(s: Section): void {
    this.bodyLines(s).forEach(({ text, line }) => {
      const t = text.trim();
      if (t === '' || t.startsWith('#')) return;
      const space = t.indexOf(' ');
      const key = space === -1 ? t : t.slice(0, space);
      if (space === -1 && !key.includes('=')) {
        const hint = /\t/.test(t) ? 'apptainer splits a label at the first space, not at a tab' : 'the label gets an empty value';
        this.warning(line, 'labels-syntax', `label line \`${t}\` is not \`key value\`; ${hint}`);
      } else if (key.includes('=')) {
        this.warning(line, 'labels-syntax', `label \`${t}\` uses \`=\`; labels are written \`key value\`, and apptainer takes \`${key}\` as the key`);
      } else if (key.endsWith(':')) {
        this.warning(line, 'labels-syntax', `label key \`${key}\` keeps its \`:\`; labels are written \`key value\``);
      }
      if (s.name === 'labels' && isReservedLabel(key)) {
        this.error(line, 'reserved-label', `label \`${key}\` is provenance that build-image writes itself; it cannot be set by the definition`);
      }
    });
  }

  private checkArguments(s: Section): void {
    const { entries, skipped } = parseArguments(s.body);
    for (const bad of skipped) {
      this.warning(s.bodyStartLine + bad.line, 'arguments-syntax', `apptainer skips \`${bad.text}\` in %arguments: write NAME=default`);
    }
    for (const { key, line } of entries) {
      if (!/^\w+$/.test(key)) {
        this.warning(s.bodyStartLine + line, 'arguments-syntax', `argument name \`${key}\` can never match a {{ }} placeholder (letters, digits and _ only): write NAME=default`);
      }
    }
  }

  private checkFileLines(s: Section): void {
    this.bodyLines(s).forEach(({ text, line }) => {
      const t = text.trim();
      // Apptainer's splitting of single-quoted paths is irregular; leave those lines alone.
      if (t === '' || t.startsWith('#') || t.includes("'")) return;
      const fields = t.match(/(?:\{\{[^}]*\}\}|"[^"]*"|[^\s"])+/g) ?? [];
      if (fields.length > 2) {
        this.warning(line, 'files-extra-field', `apptainer copies only \`${fields[0]}\` to \`${fields[1]}\` and ignores the rest of the line; quote paths that contain spaces`);
      }
    });
  }

  /**
   * Apptainer copies each %appfiles line with `cp` to /scif/apps/APP/DEST (DEST defaults to the
   * source path) and has made only bin, lib and scif there; any other parent directory is missing.
   */
  private checkAppFiles(s: Section): void {
    const made = new Set(['.', 'bin', 'lib', 'scif', 'scif/env']);
    this.bodyLines(s).forEach(({ text, line }) => {
      const t = text.trim();
      if (t === '' || t.startsWith('#') || t.includes('{{')) return;
      const content = t.split('#')[0].trim();
      const space = content.indexOf(' ');
      const dest = space === -1 ? content : content.slice(space + 1);
      const inApp = posix.normalize(`/${dest}`).slice(1);
      const parent = posix.dirname(inApp);
      if (!made.has(parent)) {
        const root = `/scif/apps/${s.app ?? ''}`;
        this.error(line, 'appfiles-destination', `%appfiles copies to ${root}/${inApp}, but ${root}/${parent} does not exist (apptainer makes only bin, lib and scif there); give a destination inside the app, e.g. \`${posix.basename(inApp)}\` or \`bin/${posix.basename(inApp)}\``);
      }
    });
  }

  checkFilesFrom(stage: Stage, index: number): void {
    for (const s of stage.sections) {
      // Indented or tab-separated section lines were already reported as section-syntax.
      if (s.name !== 'files' || !/^%+files( |$)/i.test(s.raw)) continue;
      // Mirror apptainer: arguments are what follows the first space, cut at `#`, split on blanks.
      const afterPercent = s.raw.replace(/^%+/, '');
      const space = afterPercent.indexOf(' ');
      const args = space === -1 ? '' : afterPercent.slice(space + 1).split('#')[0];
      if (args === '') continue;
      const fields = args.split(/\s+/).filter(Boolean);
      if (fields.length !== 2) {
        this.error(s.line, 'files-args', `apptainer skips this whole %files section: its arguments must be \`from STAGE\`, not \`${args.trim()}\``);
        continue;
      }
      const [keyword, name] = fields;
      if (keyword !== 'from') {
        this.warning(s.line, 'files-args', `write \`%files from ${name}\`; apptainer ignores \`${keyword}\` and copies from stage ${name}`);
      }
      const source = this.def.stages.findIndex((st) => st.name === name);
      if (source === -1) {
        const names = this.def.stages.map((st) => st.name).filter((n): n is string => n !== undefined);
        const guess = closest(name, names);
        this.error(s.line, 'unknown-stage', `%files from ${name}: no stage is named ${name}${guess ? `; did you mean ${guess}?` : names.length > 0 ? ` (stages: ${names.join(', ')})` : ' (name a stage with a `Stage:` header)'}`);
      } else if (source >= index) {
        this.error(s.line, 'stage-order', `%files from ${name}: ${source === index ? 'a stage cannot copy from itself' : `stage ${name} is built after this one`}, so the files do not exist yet`);
      }
    }
  }

  checkStageNames(): void {
    const first = new Map<string, number>();
    for (const stage of this.def.stages) {
      if (stage.name === undefined) continue;
      const line = lastHeader(stage, 'stage')!.line;
      const earlier = first.get(stage.name);
      if (earlier !== undefined) {
        this.error(line, 'duplicate-stage', `stage name ${stage.name} is already used on line ${earlier}; %files from ${stage.name} would be ambiguous`);
      } else {
        first.set(stage.name, line);
      }
    }
  }

  checkBuildArgs(unusedIsWarning: boolean): void {
    const used = new Set<string>();
    for (const v of this.def.templateVars) {
      if (v.commented) {
        // Inside a real shell comment, skipping it is what the author wants.
        const code = stripComment(this.lines[v.line - 1] ?? '');
        if (v.column <= code.length) {
          this.warning(v.line, 'placeholder-after-hash', `apptainer leaves {{ ${v.name} }} unreplaced: a \`#\` earlier on the line looks like a comment to it`, v.column);
        }
        continue;
      }
      used.add(v.name);
      const stage = this.def.stages[v.stage];
      if (v.name in this.buildArgs || (stage !== undefined && v.name in stage.argumentsDefaults)) continue;
      const elsewhere = this.def.stages.some((st) => v.name in st.argumentsDefaults);
      // `#{{ X }}` is replaced even on a comment line: apptainer wants a character between them.
      const inComment = (this.lines[v.line - 1] ?? '').trim().startsWith('#');
      this.error(v.line, 'undefined-build-arg', `{{ ${v.name} }} has no value: add ${v.name}=... to ${elsewhere ? "this stage's %arguments (another stage's defaults do not apply here)" : '%arguments'} or pass --build-arg ${v.name}=...${inComment ? '; apptainer replaces it even in this comment, because nothing stands between `#` and `{{`' : ''}`, v.column);
    }
    for (const name of Object.keys(this.buildArgs)) {
      if (used.has(name)) continue;
      const message = `build arg ${name} is given but the file never uses {{ ${name} }}`;
      if (unusedIsWarning) this.warning(1, 'unused-build-arg', message);
      else this.error(1, 'unused-build-arg', `${message}; apptainer refuses unused build args unless --warn-unused-build-args is given`);
    }
  }

  /** A here-document that never ends swallows the rest of the script without any error. */
  private checkHeredocs(s: Section): void {
    const problem = unterminatedHeredoc(s.body);
    if (problem === undefined) return;
    const { line, word, indentedEnd } = problem;
    const why = indentedEnd
      ? `its closing \`${word}\` line is indented, and sh only ends a here-document at a line that is exactly \`${word}\` (<<- strips tabs, not spaces)`
      : `no line is exactly \`${word}\``;
    this.warning(s.bodyStartLine + line, 'heredoc-unterminated', `the here-document <<${word} in %${s.name} never ends: ${why}, so the rest of the section is read as text and never runs`);
  }

  /** %post and %appinstall run as root with HOME=/root; what they put there users cannot read. */
  private checkBuildScript(s: Section, isFinal: boolean): void {
    const body = s.body;
    const sets = (variable: string): boolean => new RegExp(`(^|[\\s;&(])(export\\s+)?${variable}=`, 'm').test(body);
    const assumesYes = /assume-?yes|assumeyes\s*=\s*(1|true|yes)/i.test(body);

    for (const cmd of shellCommands(body)) {
      const line = s.bodyStartLine + cmd.line;
      // Files under /root in an earlier stage are fine: only what %files from copies reaches users.
      const home = isFinal ? homeInstall(cmd.segments, sets) : undefined;
      if (home !== undefined) {
        this.warning(line, 'root-home-install', `${home.what}, which users of the image cannot read when it runs on the cluster; ${home.fix}`);
      }
      if (!assumesYes && !/\byes\s*\||\becho\s+["']?y/.test(cmd.text)) {
        const prompt = cmd.segments.map(needsYes).find((m) => m !== undefined);
        if (prompt !== undefined) this.warning(line, 'install-needs-yes', prompt);
      }
    }
  }

  /**
   * A build script that downloads (pip install, curl, git clone ...) installs whatever is newest that day, which the
   * build key cannot see: with skipping on, an unchanged definition would keep yesterday's image. Once per file.
   */
  checkMovingTargets(): void {
    for (const stage of this.def.stages) {
      for (const s of stage.sections.filter((sec) => BUILD_SCRIPTS.has(sec.name))) {
        for (const cmd of shellCommands(s.body)) {
          const fetch = cmd.segments.map(networkFetch).find(Boolean);
          if (!fetch) continue;
          this.warning(
            s.bodyStartLine + cmd.line,
            'moving-target',
            `%${s.name} fetches from the network (${fetch}), which the build key cannot see: an unchanged definition is skipped even when what it downloads changed. Set key-inputs (e.g. \`$ pip index versions torch --pre | head -1\`) so a new release rebuilds, or force: true`,
          );
          return;
        }
      }
    }
  }

  private bodyLines(s: Section): { text: string; line: number }[] {
    return s.body === '' ? [] : s.body.split('\n').map((text, i) => ({ text, line: s.bodyStartLine + i }));
  }
}
