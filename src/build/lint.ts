// Lints an Apptainer definition file before a build: errors where apptainer 1.4 would reject the
// file or the build would surely fail, warnings for likely mistakes. Pure: text in, findings out.

import { isReservedLabel } from './provenance.js';

/** bufio.MaxScanTokenSize, the largest section apptainer's definition parser reads. */
const MAX_SECTION_BYTES = 64 * 1024;
import { posix } from 'node:path';
import {
  APP_SECTIONS,
  STANDARD_SECTIONS,
  hasBom,
  parseArguments,
  parseDefinition,
  splitLines,
  type Definition,
  type Section,
  type Stage,
} from './definition.js';

export type Severity = 'error' | 'warning';

export interface Finding {
  line: number;
  column?: number;
  severity: Severity;
  rule: string;
  message: string;
}

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

// ---------------------------------------------------------------------------------------------
// Vocabulary apptainer 1.4.5 accepts

/** Header keys apptainer knows (compared lowercased); `OtherURL<N>` is matched separately. */
const HEADER_KEYS = [
  'Bootstrap', 'From', 'IncludeCmd', 'MirrorURL', 'UpdateURL', 'OSVersion', 'Include', 'Library',
  'Registry', 'Namespace', 'Stage', 'Product', 'User', 'Regcode', 'ProductPGP', 'RegisterURL',
  'Modules', 'Fingerprints', 'ConfURL', 'SetOpt',
];
const headerKeyByLower = new Map(HEADER_KEYS.map((k) => [k.toLowerCase(), k]));

/** Agents apptainer 1.4.5 accepts (`dnf` is an alias of `yum`); they are case-sensitive. */
const AGENTS = [
  'docker', 'docker-archive', 'docker-daemon', 'oci', 'oci-archive', 'library', 'oras', 'shub',
  'localimage', 'scratch', 'busybox', 'debootstrap', 'arch', 'yum', 'dnf', 'zypper',
];
/** Agents that build on an existing image or archive named by `From:`. */
const AGENTS_NEEDING_FROM = new Set([
  'docker', 'docker-archive', 'docker-daemon', 'oci', 'oci-archive', 'library', 'oras', 'shub', 'localimage',
]);

const SECTIONS: readonly string[] = [...STANDARD_SECTIONS, ...APP_SECTIONS];
const appSections: ReadonlySet<string> = new Set(APP_SECTIONS);
/** Sections whose duplicates apptainer silently concatenates into one entry point. */
const ENTRY_POINTS = new Set(['runscript', 'startscript', 'test', 'apprun', 'appstart', 'apptest']);
/** Build-time scripts whose arguments apptainer passes to /bin/sh. */
const SHELL_ARG_SECTIONS = new Set(['setup', 'post', 'pre']);
/** Sections apptainer runs or sources with /bin/sh. */
const SHELL_SECTIONS = new Set([
  'setup', 'pre', 'post', 'test', 'runscript', 'startscript', 'environment',
  'appinstall', 'apprun', 'apptest', 'appstart', 'appenv',
]);
/** Scripts that run inside the container at build time, as root with HOME=/root. */
const BUILD_SCRIPTS = new Set(['post', 'appinstall']);

// ---------------------------------------------------------------------------------------------

class Linter {
  readonly findings: Finding[] = [];

  constructor(
    private readonly def: Definition,
    private readonly lines: string[],
    private readonly buildArgs: Record<string, string>,
  ) {}

  error(line: number, rule: string, message: string, column?: number): void {
    this.add('error', line, rule, message, column);
  }

  warning(line: number, rule: string, message: string, column?: number): void {
    this.add('warning', line, rule, message, column);
  }

  private add(severity: Severity, line: number, rule: string, message: string, column?: number): void {
    const f: Finding = { line, severity, rule, message };
    if (column !== undefined) f.column = column;
    this.findings.push(f);
  }

  /** Checks header syntax and keys; returns the keys that unknown keys look like (for follow-ups). */
  checkHeaders(stage: Stage): Set<string> {
    const suggested = new Set<string>();
    for (const bad of stage.invalidHeaderLines) {
      this.error(bad.line, 'header-syntax', `header line \`${bad.text}\` is not \`Key: value\`; apptainer rejects it (a section starts with %name)`);
    }
    const seen = new Map<string, number>();
    for (const h of stage.headers) {
      const lower = h.key.toLowerCase();
      const column = this.lines[h.line - 1].search(/\S/) + 1;
      if (!headerKeyByLower.has(lower) && !/^otherurl\d+$/.test(lower)) {
        const guess = closest(lower, [...headerKeyByLower.keys()]);
        const canonical = guess === undefined ? undefined : headerKeyByLower.get(guess);
        if (guess !== undefined) suggested.add(guess);
        this.error(h.line, 'unknown-header', `unknown header ${h.key}${canonical ? `; did you mean ${canonical}?` : ` (known: ${HEADER_KEYS.join(', ')})`}`, column);
        continue;
      }
      const earlier = seen.get(lower);
      if (earlier !== undefined) {
        this.warning(h.line, 'duplicate-header', `${h.key} is set again (first on line ${earlier}); apptainer keeps only this later value`, column);
      }
      seen.set(lower, h.line);
    }
    return suggested;
  }

  checkBootstrap(stage: Stage, suggested: Set<string>): void {
    const entry = lastHeader(stage, 'bootstrap');
    const raw = entry === undefined ? undefined : this.resolve(entry.value, stage);
    if (entry === undefined || raw === '') {
      // A misspelt Bootstrap key was already reported; saying it is missing adds nothing.
      if (suggested.has('bootstrap')) return;
      const where = entry?.line ?? stage.line;
      const isLeadingText = entry === undefined && stage === this.def.stages[0] && this.def.stages.length > 1;
      this.error(where, 'missing-bootstrap', isLeadingText
        ? 'this text comes before the first `Bootstrap:` line, so apptainer reads it as a stage without Bootstrap'
        : 'no Bootstrap agent: apptainer needs `Bootstrap: AGENT` (e.g. docker) at the top of each stage');
      return;
    }
    if (raw === undefined) return; // a placeholder without value, reported by checkBuildArgs
    if (!AGENTS.includes(raw)) {
      if (AGENTS.includes(raw.toLowerCase())) {
        this.error(entry.line, 'unknown-bootstrap', `bootstrap agent ${raw} must be lowercase: Bootstrap: ${raw.toLowerCase()}`);
      } else {
        const guess = closest(raw.toLowerCase(), AGENTS);
        this.error(entry.line, 'unknown-bootstrap', `unknown bootstrap agent ${raw}${guess ? `; did you mean ${guess}?` : ` (apptainer knows ${AGENTS.join(', ')})`}`);
      }
      return;
    }
    this.checkAgentHeaders(stage, raw, entry.line, suggested);
  }

  private checkAgentHeaders(stage: Stage, agent: string, line: number, suggested: Set<string>): void {
    const value = (key: string): string | undefined => {
      const h = lastHeader(stage, key);
      return h === undefined ? undefined : (this.resolve(h.value, stage) ?? h.value);
    };
    const require = (key: string, why: string): void => {
      const v = value(key);
      if (v === undefined || v === '') {
        this.error(lastHeader(stage, key)?.line ?? line, 'missing-header', `Bootstrap: ${agent} needs ${v === '' ? `a value for ${key}:` : `the header ${key}:`} (${why})`);
      }
    };

    if (AGENTS_NEEDING_FROM.has(agent)) {
      const from = lastHeader(stage, 'from');
      if (from === undefined) {
        if (!suggested.has('from')) this.error(line, 'missing-from', `Bootstrap: ${agent} needs a From: header naming the image to start from`);
      } else if (from.value === '') {
        this.error(from.line, 'missing-from', 'From: is empty; name the image to start from');
      } else if (agent === 'docker') {
        this.checkDockerReference(from.line, this.resolve(from.value, stage));
      }
    }
    const mentionsOsVersion = /%\{OSVERSION\}/i.test(`${value('mirrorurl') ?? ''} ${value('updateurl') ?? ''}`);
    switch (agent) {
      case 'busybox':
        require('MirrorURL', 'the URL of a busybox binary');
        break;
      case 'debootstrap':
        require('MirrorURL', 'the Debian/Ubuntu mirror');
        require('OSVersion', 'the release codename, e.g. bookworm');
        break;
      case 'yum':
      case 'dnf':
        require('MirrorURL', 'the repository URL');
        if (mentionsOsVersion) require('OSVersion', 'the mirror URL uses %{OSVERSION}');
        break;
      case 'zypper':
        // Without MirrorURL, zypper uses the build host's SUSE registration, so it is optional.
        if (['product', 'user', 'regcode'].some((k) => value(k) !== undefined)) {
          for (const k of ['Product', 'User', 'Regcode', 'OSVersion']) require(k, 'a SLE installation needs Product, User, Regcode and OSVersion');
          if (Number.parseInt(value('osversion') ?? '', 10) > 12) require('MirrorURL', 'SLE after 12 installs from the installer URL');
        } else if (mentionsOsVersion) {
          require('OSVersion', 'the mirror URL uses %{OSVERSION}');
        }
        break;
    }
  }

  private checkDockerReference(line: number, from: string | undefined): void {
    if (from === undefined) return;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(from)) {
      this.error(line, 'invalid-from', `From: takes the image name without a scheme with Bootstrap: docker; write \`From: ${from.replace(/^[^:]*:\/\//, '')}\``);
    } else if (!DOCKER_REFERENCE.test(from)) {
      this.error(line, 'invalid-from', `From: ${from} is not a valid image reference (repository names are lowercase, no spaces; NAME[:TAG][@DIGEST])`);
    }
  }

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

  /** Resolves {{ }} placeholders in a header value; undefined when one has no value. */
  private resolve(value: string, stage: Stage): string | undefined {
    let missing = false;
    const out = value.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => {
      const v = this.buildArgs[name] ?? stage.argumentsDefaults[name];
      if (v === undefined) missing = true;
      return v ?? '';
    });
    return missing ? undefined : out;
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

function lastHeader(stage: Stage, key: string): { value: string; line: number } | undefined {
  return stage.headers.filter((h) => h.key.toLowerCase() === key.toLowerCase()).pop();
}

// ---------------------------------------------------------------------------------------------
// Shell heuristics for build scripts

/** The network fetch a simple command makes (`pip install`, `curl`, `git clone` ...), named, or undefined. */
function networkFetch(segment: string): string | undefined {
  const m =
    /^(?:\S*\/)?(pip3?|python3?\s+-m\s+pip|uv\s+pip|conda|mamba|micromamba)\s+install\b/.exec(segment) ??
    /^(?:\S*\/)?(curl|wget|git\s+clone|git\s+pull|git\s+fetch|npm\s+(?:install|i|ci)|cargo\s+install|go\s+install|apt-get\s+install|apt\s+install|dnf\s+install|yum\s+install|apk\s+add)\b/.exec(segment);
  return m ? m[0].replace(/\s+/g, ' ') : undefined;
}

interface ShellCommand {
  /** 0-based line within the body where the logical line starts. */
  line: number;
  /** The logical line, continuations joined and comments removed. */
  text: string;
  /** Simple commands split at ;, &&, || and |, each with leading env assignments and sudo removed. */
  segments: string[];
}

/** Logical command lines of a shell body, skipping here-document contents. */
function shellCommands(body: string): ShellCommand[] {
  const lines = body.split('\n');
  const out: ShellCommand[] = [];
  let heredoc: { word: string; stripTabs: boolean } | undefined;
  for (let i = 0; i < lines.length; i++) {
    if (heredoc !== undefined) {
      const candidate = heredoc.stripTabs ? lines[i].replace(/^\t+/, '') : lines[i];
      if (candidate === heredoc.word) heredoc = undefined;
      continue;
    }
    const start = i;
    let text = stripComment(lines[i]);
    while (text.endsWith('\\') && i + 1 < lines.length) {
      i++;
      text = text.slice(0, -1) + ' ' + stripComment(lines[i]);
    }
    heredoc = heredocOperator(text);
    if (text.trim() === '') continue;
    const segments = splitCommands(text)
      .map((seg) => seg.trim().replace(/^(?:(?:\w+=\S*|sudo|env|exec|time)\s+)+/, ''))
      .filter(Boolean);
    out.push({ line: start, text, segments });
  }
  return out;
}

/** The first here-document in a shell body that sh never closes, if any. */
function unterminatedHeredoc(body: string): { line: number; word: string; indentedEnd: boolean } | undefined {
  const lines = body.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const op = heredocOperator(lines[i]);
    if (op === undefined) continue;
    let end = -1;
    let looseEnd = -1;
    for (let j = i + 1; j < lines.length && end === -1; j++) {
      const candidate = op.stripTabs ? lines[j].replace(/^\t+/, '') : lines[j];
      if (candidate === op.word) end = j;
      else if (looseEnd === -1 && lines[j].trim() === op.word) looseEnd = j;
    }
    if (end === -1) return { line: i, word: op.word, indentedEnd: looseEnd !== -1 };
    i = end;
  }
  return undefined;
}

/** The delimiter of a `<<WORD` / `<<-WORD` operator outside quotes and comments. */
function heredocOperator(line: string): { word: string; stripTabs: boolean } | undefined {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
      continue;
    }
    if (c === '"' || c === "'") quote = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) return undefined;
    else if (c === '<' && line[i + 1] === '<' && line[i + 2] !== '<' && line[i - 1] !== '<' && !line.slice(0, i).includes('((')) {
      const m = /^<<(-?)\s*(?:'([^']*)'|"([^"]*)"|\\?([A-Za-z_][\w.-]*))/.exec(line.slice(i));
      if (m) return { word: m[2] ?? m[3] ?? m[4], stripTabs: m[1] === '-' };
    }
  }
  return undefined;
}

/** Splits a command line at ;, &&, || and | outside quotes. */
function splitCommands(text: string): string[] {
  const parts: string[] = [];
  let quote: string | undefined;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === ';' || c === '|' || (c === '&' && text[i + 1] === '&')) {
      parts.push(text.slice(start, i));
      if (text[i + 1] === c) i++;
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Drops a `#` comment that starts a word outside quotes. */
function stripComment(line: string): string {
  let quote: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '#' && (i === 0 || /\s/.test(line[i - 1]))) {
      return line.slice(0, i).trimEnd();
    }
  }
  return line.trimEnd();
}

/** Commands that only clean up or report, where mentioning /root or $HOME is harmless. */
const HARMLESS = /^(rm|chmod|chown|echo|printf|unset|test|\[)\b/;

function homeInstall(segments: string[], sets: (variable: string) => boolean): { what: string; fix: string } | undefined {
  for (const seg of segments) {
    if (/\bpip[\d.]*\s+install\b/.test(seg) && /(^|\s)--user(\s|$)/.test(seg)) {
      return { what: 'pip install --user puts packages in /root/.local', fix: 'drop --user' };
    }
    if (/^(?:\S*\/)?(?:ba)?sh\s+(?:-\S+\s+)*\S*(?:conda|forge|mamba)\S*\.sh\b|^\S*(?:conda|forge|mamba)\S*\.sh\b/i.test(seg)
      && !/(^|\s)-[a-z]*p/.test(seg)) {
      return { what: 'the conda installer without -p installs into $HOME, which is /root during the build', fix: 'add -p /opt/conda' };
    }
    if (/^(?:conda|mamba|micromamba)\s+(?:shell\s+)?init\b/.test(seg)) {
      return { what: `${seg.split(/\s+/)[0]} init only edits /root/.bashrc`, fix: 'activate the environment in %environment instead' };
    }
    if (/^cargo\s+install\b/.test(seg) && !/\s--root\b/.test(seg) && !sets('CARGO_HOME') && !sets('CARGO_INSTALL_ROOT')) {
      return { what: 'cargo install puts binaries in /root/.cargo/bin', fix: 'pass --root /usr/local or set CARGO_HOME' };
    }
    if (/sh\.rustup\.rs|rustup-init/.test(seg) && !(sets('CARGO_HOME') && sets('RUSTUP_HOME'))) {
      return { what: 'rustup installs into /root/.cargo and /root/.rustup', fix: 'export CARGO_HOME and RUSTUP_HOME (e.g. under /usr/local) first' };
    }
    if (/^go\s+install\b/.test(seg) && !sets('GOBIN') && !sets('GOPATH')) {
      return { what: 'go install puts binaries in /root/go/bin', fix: 'set GOBIN, e.g. GOBIN=/usr/local/bin' };
    }
    if (/astral\.sh\/uv\//.test(seg) && !sets('UV_INSTALL_DIR')) {
      return { what: 'the uv installer puts uv in /root/.local/bin', fix: 'set UV_INSTALL_DIR, e.g. /usr/local/bin' };
    }
    if (/^pipx\s+install\b/.test(seg) && !/\s--global\b/.test(seg) && !sets('PIPX_HOME') && !sets('PIPX_BIN_DIR')) {
      return { what: 'pipx install puts tools in /root/.local', fix: 'use pipx install --global, or set PIPX_HOME and PIPX_BIN_DIR' };
    }
    if (/^julia\b/.test(seg) && /Pkg\.(add|instantiate|develop)\b/.test(seg) && !sets('JULIA_DEPOT_PATH')) {
      return { what: 'Julia installs packages into /root/.julia', fix: 'set JULIA_DEPOT_PATH, e.g. /opt/julia' };
    }
    if (/^(?:huggingface-cli|hf)\s+download\b/.test(seg) && !/\s--local-dir\b/.test(seg) && !sets('HF_HOME') && !sets('HF_HUB_CACHE')) {
      return { what: 'the model is downloaded into /root/.cache/huggingface', fix: 'pass --local-dir or set HF_HOME' };
    }
    if (HARMLESS.test(seg)) continue;
    if (/\$\{?HOME\b|(^|[\s=:'"])~(\/|\s|$)/.test(seg) && !sets('HOME')) {
      return { what: '$HOME is /root during the build, so this works under /root', fix: 'install under /opt or /usr/local instead' };
    }
    if (/(^|[\s='":;(])\/root(?=\/|\s|$|['";:)])/.test(seg)) {
      return { what: 'this works under /root', fix: 'install under /opt or /usr/local instead' };
    }
  }
  return undefined;
}

/** Package managers that ask for confirmation and abort on the closed stdin of a build. */
function needsYes(seg: string): string | undefined {
  const words = seg.split(/\s+/);
  const tool = words[0].replace(/^.*\//, '');
  const options = words.filter((w) => w.startsWith('-'));
  const shortHas = (letter: string): boolean => options.some((o) => /^-[a-zA-Z]+$/.test(o) && o.includes(letter));
  const command = words.slice(1).find((w) => !w.startsWith('-'));
  if (command === undefined) return undefined;

  if (tool === 'apt-get' || tool === 'apt') {
    if (!['install', 'upgrade', 'dist-upgrade', 'full-upgrade', 'remove', 'purge', 'autoremove', 'reinstall'].includes(command)) return undefined;
    // apt-get reads -qq as "assume yes" too.
    if (shortHas('y') || options.includes('--yes') || options.includes('--assume-yes') || options.includes('-qq')) return undefined;
    return `${tool} ${command} without -y stops at its confirmation prompt and the build fails; add -y`;
  }
  if (tool === 'yum' || tool === 'dnf') {
    if (!['install', 'update', 'upgrade', 'remove', 'erase', 'groupinstall', 'localinstall', 'reinstall', 'downgrade', 'distro-sync', 'autoremove'].includes(command)) return undefined;
    if (shortHas('y') || options.includes('--assumeyes')) return undefined;
    return `${tool} ${command} without -y stops at its confirmation prompt and the build fails; add -y`;
  }
  if (tool === 'zypper') {
    if (!['install', 'in', 'update', 'up', 'remove', 'rm', 'dist-upgrade', 'dup', 'patch'].includes(command)) return undefined;
    if (shortHas('n') || shortHas('y') || options.includes('--non-interactive') || options.includes('--no-confirm')) return undefined;
    return `zypper ${command} without --non-interactive stops at its confirmation prompt and the build fails; use zypper -n ${command}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Small helpers

// The grammar of docker image references (distribution/reference), which apptainer uses for
// `Bootstrap: docker`: an optional registry host, lowercase path components, tag and digest.
const DOCKER_REFERENCE = (() => {
  const alnum = '[a-z0-9]+';
  const component = `${alnum}(?:(?:[._]|__|-+)${alnum})*`;
  const hostPart = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
  const domain = `(?:${hostPart}(?:\\.${hostPart})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
  const tag = '[\\w][\\w.-]{0,127}';
  const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
  return new RegExp(`^(?:${domain}/)?${component}(?:/${component})*(?::${tag})?(?:@${digest})?$`);
})();

/** The candidate nearest to `word` by edit distance, when it is close enough to be a typo. */
function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  // Allow about one slip per three letters, so short names do not match everything.
  const limit = Math.max(1, Math.min(3, Math.floor(word.length / 3)));
  if (best !== undefined && bestDistance <= limit) return best;
  // An abbreviation such as %env or %run.
  const prefixed = candidates.filter((c) => word.length >= 3 && c.toLowerCase().startsWith(word.toLowerCase()));
  return prefixed.length === 1 ? prefixed[0] : undefined;
}

/** Edits (insert, delete, replace, swap two neighbours) between two words; a swap is a common typo. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}
