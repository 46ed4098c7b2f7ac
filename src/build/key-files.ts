// The host files a definition brings into the image, hashed for the build key: every `%files` source (globs and
// directories included) and every existing file named by path in `%setup`. Without them, two builds that copy
// different file contents under the same definition would share a key, and a skip would keep a stale image.
//
// Paths are resolved as apptainer resolves them: relative to the directory the builder runs in (the build's
// working directory), since the builder reads a generated recipe in a temporary directory, not the file itself.
// What `%setup` reads cannot be known in general (it is a shell script); a word of it that is a path to an existing
// regular file is covered, anything it computes or downloads is not (use `key-inputs` for that).
import { createHash } from 'node:crypto';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { parse as shellParse } from 'shell-quote';
import { parseDefinition } from './definition.js';
import { substitute } from './recipe.js';
import { sha256File } from '../util/hash.js';
import { UserError } from '../user-error.js';

export interface HostFile {
  /** As written in the definition (after build-argument substitution), then each file found under it. */
  path: string;
  sha256: string;
}

export interface HostFiles {
  files: HostFile[];
  /** One digest over the paths and contents of all files, in a fixed order; undefined when there are none. */
  digest?: string;
}

/** Raised for a `%files` source that matches nothing: apptainer would fail the build on it too. */
export class HostFileError extends UserError {
  override name = 'HostFileError';
}

export async function hostFiles(text: string, cwd: string, buildArgs: Record<string, string>): Promise<HostFiles> {
  const def = parseDefinition(text);
  const sources: { pattern: string; line: number; required: boolean }[] = [];
  for (const stage of def.stages) {
    for (const section of stage.sections) {
      const lines = section.body.split('\n');
      if (section.name === 'files' && !/^from\b/i.test(section.args)) {
        lines.forEach((raw, i) => {
          const line = substitute(raw, buildArgs, stage.argumentsDefaults).trim();
          if (line === '' || line.startsWith('#')) return;
          const first = (line.match(/(?:"[^"]*"|'[^']*'|[^\s"'])+/) ?? [''])[0].replace(/^(["'])(.*)\1$/, '$2');
          if (first) sources.push({ pattern: first, line: section.bodyStartLine + i, required: true });
        });
      }
      if (section.name === 'setup') {
        for (const raw of lines) {
          const line = substitute(raw, buildArgs, stage.argumentsDefaults);
          for (const word of setupWords(line)) sources.push({ pattern: word, line: 0, required: false });
        }
      }
    }
  }
  const files = new Map<string, string>();
  for (const source of sources) {
    const matched = await expand(source.pattern, cwd);
    if (matched.length === 0 && source.required) {
      throw new HostFileError(`definition line ${source.line}: %files source ${source.pattern} matches no file (relative paths are read from ${cwd})`);
    }
    for (const file of matched) {
      const info = await stat(file).catch(() => undefined);
      if (!info) continue;
      if (info.isDirectory() && source.required) {
        for (const inner of await walk(file)) files.set(inner, await sha256File(inner));
      } else if (info.isFile()) {
        files.set(file, await sha256File(file));
      }
    }
  }
  const list = [...files].map(([p, sha256]) => ({ path: path.relative(cwd, p) || p, sha256 })).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  if (list.length === 0) return { files: [] };
  const hash = createHash('sha256');
  for (const f of list) hash.update(`${f.path}\0${f.sha256}\n`);
  return { files: list, digest: `sha256:${hash.digest('hex')}` };
}

/**
 * Arguments of a `%setup` line that look like host paths: no variables or globs, with a `/` or a file extension.
 * Command names are left out (`/bin/cp` is the runner's, and would rebuild whenever the runner image changes).
 */
function setupWords(line: string): string[] {
  const trimmed = line.trim();
  if (trimmed === '' || trimmed.startsWith('#')) return [];
  let tokens: ReturnType<typeof shellParse>;
  try {
    tokens = shellParse(trimmed, (name) => `$${name}`);
  } catch {
    return [];
  }
  const words: string[] = [];
  let commandPosition = true;
  for (const token of tokens) {
    if (typeof token !== 'string') {
      commandPosition = 'op' in token && token.op !== '>' && token.op !== '<' && token.op !== '>>';
      continue;
    }
    if (commandPosition) {
      // `VAR=value cmd` and `sudo cmd`: still before the command name.
      commandPosition = /^\w+=/.test(token) || token === 'sudo' || token === 'env';
      continue;
    }
    if (!token.includes('$') && !/[*?[]/.test(token) && !token.startsWith('-') && (token.includes('/') || /\.\w+$/.test(token))) words.push(token);
  }
  return words;
}

/** A path or a glob as Go's filepath.Glob matches it (what apptainer uses for `%files`): `*`, `?` and `[...]`
 * within one path component. */
async function expand(pattern: string, cwd: string): Promise<string[]> {
  const absolute = path.resolve(cwd, pattern);
  if (!/[*?[]/.test(pattern)) return (await stat(absolute).catch(() => undefined)) ? [absolute] : [];
  const parts = absolute.split('/').filter(Boolean);
  let current = ['/'];
  for (const part of parts) {
    const next: string[] = [];
    if (!/[*?[]/.test(part)) {
      for (const dir of current) next.push(path.join(dir, part));
    } else {
      const regex = globRegExp(part);
      for (const dir of current) {
        for (const name of (await readdir(dir).catch(() => [] as string[])).sort()) {
          if (regex.test(name)) next.push(path.join(dir, name));
        }
      }
    }
    current = next;
  }
  const existing = await Promise.all(current.map(async (p) => ((await stat(p).catch(() => undefined)) ? p : undefined)));
  return existing.filter((p): p is string => p !== undefined);
}

function globRegExp(part: string): RegExp {
  let out = '';
  for (let i = 0; i < part.length; i++) {
    const c = part[i];
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = part.indexOf(']', i + 1);
      if (end < 0) out += '\\[';
      else {
        out += `[${part.slice(i + 1, end).replace(/^\^/, '^').replace(/\\/g, '\\\\')}]`;
        i = end;
      }
    } else out += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/** Every regular file under a directory, symlinks not followed (cp -a copies them as links). */
async function walk(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await walk(full)));
    else if (entry.isFile()) out.push(full);
  }
  return out;
}
