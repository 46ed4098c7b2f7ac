// The definition linter's checks of each stage's header: known keys, the bootstrap agent and the headers it needs,
// the `From:` reference. `LintBase` holds the findings and the build-argument resolution all checks share.
import { closest } from '../util/closest.js';
import type { Definition, Stage } from './definition.js';
import { isImageReference } from './image-ref.js';
import { AGENTS, AGENTS_NEEDING_FROM, HEADER_KEYS, headerKeyByLower } from './lint-vocabulary.js';

export type Severity = 'error' | 'warning';

export interface Finding {
  line: number;
  column?: number;
  severity: Severity;
  rule: string;
  message: string;
}

/** Collects findings; the checks are its subclasses' methods. */
export class LintBase {
  readonly findings: Finding[] = [];

  constructor(
    protected readonly def: Definition,
    protected readonly lines: string[],
    protected readonly buildArgs: Record<string, string>,
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

  /** Resolves {{ }} placeholders in a header value; undefined when one has no value. */
  protected resolve(value: string, stage: Stage): string | undefined {
    let missing = false;
    const out = value.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name: string) => {
      const v = this.buildArgs[name] ?? stage.argumentsDefaults[name];
      if (v === undefined) missing = true;
      return v ?? '';
    });
    return missing ? undefined : out;
  }
}

/** Header checks of one stage. */
export class HeaderChecks extends LintBase {
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
    } else if (!isImageReference(from)) {
      this.error(line, 'invalid-from', `From: ${from} is not a valid image reference (repository names are lowercase, no spaces; NAME[:TAG][@DIGEST])`);
    }
  }
}

export function lastHeader(stage: Stage, key: string): { value: string; line: number } | undefined {
  return stage.headers.filter((h) => h.key.toLowerCase() === key.toLowerCase()).pop();
}
