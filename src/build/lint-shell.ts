// Shell heuristics for the definition linter's build-script rules: logical command lines of a `%post` body (here-
// documents skipped, continuations joined, comments dropped), split into simple commands, and the patterns the rules
// look for in them (network fetches, installs into root's home, package managers that would prompt). Heuristics,
// not a shell parser: they err towards saying nothing.

/** The network fetch a simple command makes (`pip install`, `curl`, `git clone` ...), named, or undefined. */
export function networkFetch(segment: string): string | undefined {
  const m =
    /^(?:\S*\/)?(pip3?|python3?\s+-m\s+pip|uv\s+pip|conda|mamba|micromamba)\s+install\b/.exec(segment) ??
    /^(?:\S*\/)?(curl|wget|git\s+clone|git\s+pull|git\s+fetch|npm\s+(?:install|i|ci)|cargo\s+install|go\s+install|apt-get\s+install|apt\s+install|dnf\s+install|yum\s+install|apk\s+add)\b/.exec(segment);
  return m ? m[0].replace(/\s+/g, ' ') : undefined;
}

export interface ShellCommand {
  /** 0-based line within the body where the logical line starts. */
  line: number;
  /** The logical line, continuations joined and comments removed. */
  text: string;
  /** Simple commands split at ;, &&, || and |, each with leading env assignments and sudo removed. */
  segments: string[];
}

/** Logical command lines of a shell body, skipping here-document contents. */
export function shellCommands(body: string): ShellCommand[] {
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
export function unterminatedHeredoc(body: string): { line: number; word: string; indentedEnd: boolean } | undefined {
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

/** The positions of the characters outside single and double quotes (the quote characters themselves excluded). */
function* unquoted(text: string): Generator<number> {
  let quote: string | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else {
      yield i;
    }
  }
}

/** Splits a command line at ;, &&, || and | outside quotes. */
function splitCommands(text: string): string[] {
  const parts: string[] = [];
  let start = 0;
  for (const i of unquoted(text)) {
    if (i < start) continue; // the second character of && or ||
    const c = text[i];
    if (c === ';' || c === '|' || (c === '&' && text[i + 1] === '&')) {
      parts.push(text.slice(start, i));
      start = text[i + 1] === c ? i + 2 : i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

/** Drops a `#` comment that starts a word outside quotes. */
export function stripComment(line: string): string {
  for (const i of unquoted(line)) {
    if (line[i] === '#' && (i === 0 || /\s/.test(line[i - 1]))) return line.slice(0, i).trimEnd();
  }
  return line.trimEnd();
}

/** Commands that only clean up or report, where mentioning /root or $HOME is harmless. */
const HARMLESS = /^(rm|chmod|chown|echo|printf|unset|test|\[)\b/;

export function homeInstall(segments: string[], sets: (variable: string) => boolean): { what: string; fix: string } | undefined {
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
export function needsYes(seg: string): string | undefined {
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
