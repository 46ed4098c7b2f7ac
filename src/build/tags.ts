// Following a repository's tags: `source-tag-pattern` (a template such as `{yy}.{mm}-py3`, or a regular expression
// between slashes) picks the newest tag the registry lists, ordered by the pattern's fields as numbers, so that
// 24.9-py3 < 24.10-py3 where string order says otherwise.
import { formatImageRef, registryClient, type ImageRef, type ResolveOptions, type Source } from './source.js';

/** One field of a tag's ordering key: digits compare as numbers, anything else as text; absent sorts first. */
type KeyPart = bigint | string | undefined;

export interface TagPattern {
  /** The pattern as the user wrote it. */
  text: string;
  /** Matches a whole tag. */
  regex: RegExp;
  /** The ordering key of a tag the pattern matches; undefined when it does not match. */
  key(tag: string): KeyPart[] | undefined;
}

/** Characters a tag may have (the distribution spec: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`). */
const TAG_CHARS = /^[\w.-]$/;

/**
 * Parses a tag pattern. A template has `{name}` fields, each a run of digits compared as a number in the order
 * written (the names only document them), `*` for any text that is not compared, and literal text. `/EXPR/` is a
 * regular expression matched against the whole tag, ordered by its capture groups (or, with none, by the tag's
 * digit runs as numbers).
 */
export function parseTagPattern(text: string): TagPattern {
  if (text.length >= 2 && text.startsWith('/') && text.endsWith('/')) return regexPattern(text);
  if (text.startsWith('/')) throw new Error(`a regular expression is written between slashes, e.g. /^(\\d+)\\.(\\d+)-py3$/; got ${text}`);
  let source = '';
  let fields = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '{') {
      const m = /^\{([A-Za-z_][A-Za-z0-9_]*)\}/.exec(text.slice(i));
      if (!m) throw new Error(`'{' at column ${i + 1} of ${text} does not open a field such as {yy}, {mm} or {n} (letters, digits and _ in braces)`);
      source += '(\\d+)';
      fields++;
      i += m[0].length - 1;
    } else if (c === '*') {
      source += '(?:.*?)';
    } else if (TAG_CHARS.test(c)) {
      source += c.replace(/[.]/g, '\\.');
    } else {
      throw new Error(`${JSON.stringify(c)} at column ${i + 1} of ${text} cannot occur in a tag (letters, digits, _ . and -); fields are {name}, any text is *`);
    }
  }
  if (fields === 0) throw new Error(`${text} has no {field} to order tags by; write the varying parts as fields, e.g. {yy}.{mm}-py3`);
  const regex = new RegExp(`^${source}$`);
  return {
    text,
    regex,
    key: (tag) => {
      const m = regex.exec(tag);
      return m ? m.slice(1).map((d) => BigInt(d)) : undefined;
    },
  };
}

function regexPattern(text: string): TagPattern {
  let inner: RegExp;
  try {
    inner = new RegExp(text.slice(1, -1));
  } catch (error) {
    throw new Error(`${text} is not a regular expression: ${(error as Error).message}`, { cause: error });
  }
  const regex = new RegExp(`^(?:${inner.source})$`);
  return {
    text,
    regex,
    key: (tag) => {
      const m = regex.exec(tag);
      if (!m) return undefined;
      return m.length > 1 ? m.slice(1).map((g) => (g === undefined ? undefined : /^\d+$/.test(g) ? BigInt(g) : g)) : naturalKey(tag);
    },
  };
}

/** A tag as runs of digits (numbers) and of other characters (text): `24.10-py3` → 24 "." 10 "-py" 3. */
export function naturalKey(tag: string): KeyPart[] {
  return (tag.match(/\d+|\D+/g) ?? []).map((part) => (/^\d/.test(part) ? BigInt(part) : part));
}

function comparePart(a: KeyPart, b: KeyPart): number {
  if (a === b) return 0;
  if (a === undefined) return -1;
  if (b === undefined) return 1;
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : 1;
  const [x, y] = [String(a), String(b)];
  return x < y ? -1 : x > y ? 1 : 0;
}

export function compareKeys(a: KeyPart[], b: KeyPart[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const c = comparePart(a[i], b[i]);
    if (c !== 0) return c;
  }
  return 0;
}

/** The tags the pattern matches, newest first; equal keys (24.9 and 24.09) in string order, for a stable choice. */
export function matchingTags(tags: readonly string[], pattern: TagPattern): string[] {
  const keyed = tags.flatMap((tag) => {
    const key = pattern.key(tag);
    return key ? [{ tag, key }] : [];
  });
  keyed.sort((a, b) => compareKeys(b.key, a.key) || (a.tag < b.tag ? 1 : a.tag > b.tag ? -1 : 0));
  return keyed.map((k) => k.tag);
}

export interface TagList {
  tags: string[];
  pages: number;
}

/** Pages beyond this mean a registry that loops, not a repository: NGC's largest has a few hundred tags. */
const MAX_PAGES = 1000;

/**
 * Every tag of a repository, through `GET /v2/NAME/tags/list?n=N`, following the `Link: <...>; rel="next"` header
 * page by page (registries cap `n`: Docker Hub at 100, others at 1000); a registry that ignores `n` answers with
 * one page.
 */
export async function listTags(ref: ImageRef, options: ResolveOptions & { pageSize?: number } = {}): Promise<TagList> {
  const client = registryClient(ref, options);
  const where = `${ref.registry}/${ref.repository}`;
  const seen = new Set<string>();
  const requested = new Set<string>();
  let next: string | undefined = client.url(`tags/list?n=${options.pageSize ?? 100}`);
  let pages = 0;
  while (next) {
    if (requested.has(next) || pages >= MAX_PAGES) throw new Error(`registry ${ref.registry} pages the tags of ${where} without end (page ${pages + 1}: ${next})`);
    requested.add(next);
    const response = await client.request(next, { accept: 'application/json' });
    if (response.status === 404) throw new Error(`repository not found: ${where}`);
    if (!response.ok) throw new Error(`registry ${ref.registry} answered HTTP ${response.status} listing the tags of ${where}`);
    const body = (await response.json().catch(() => undefined)) as { tags?: unknown } | undefined;
    const tags = body?.tags ?? [];
    if (!Array.isArray(tags) || tags.some((t) => typeof t !== 'string')) {
      throw new Error(`registry ${ref.registry} answered the tag list of ${where} with something that is not a list of tags`);
    }
    for (const tag of tags as string[]) seen.add(tag);
    pages++;
    next = nextPage(response.headers.get('link'), next, ref);
  }
  return { tags: [...seen], pages };
}

/** The `rel="next"` target of a Link header, resolved against the page it came with; only on the same registry. */
function nextPage(link: string | null, current: string, ref: ImageRef): string | undefined {
  const m = link ? /<([^>]*)>\s*;\s*(?:[^,]*;\s*)?rel="?next"?/.exec(link) : null;
  if (!m) return undefined;
  const url = new URL(m[1], current);
  // The credentials go with every page: never to another host.
  if (url.origin !== new URL(current).origin) throw new Error(`registry ${ref.registry} sent the next page of tags to another host (${url.origin})`);
  return url.href;
}

export interface TagChoice {
  tag: string;
  pattern: string;
  /** `registry/repository` as the user wrote it. */
  repository: string;
  seen: number;
  matched: number;
  pages: number;
}

/** The newest tag of the source's repository that the pattern matches, or an error naming the pattern, the repository and some tags seen. */
export async function chooseTag(ref: ImageRef, pattern: TagPattern, options: ResolveOptions & { pageSize?: number } = {}): Promise<TagChoice> {
  const repository = formatImageRef({ registry: ref.registry, repository: ref.repository });
  const { tags, pages } = await listTags(ref, options);
  if (tags.length === 0) throw new Error(`source-tag-pattern ${pattern.text}: ${repository} has no tags`);
  const matched = matchingTags(tags, pattern);
  if (matched.length === 0) {
    const shown = [...tags].sort((a, b) => compareKeys(naturalKey(b), naturalKey(a))).slice(0, 8);
    const more = tags.length > shown.length ? `, … (${tags.length - shown.length} more)` : '';
    throw new Error(`source-tag-pattern ${pattern.text} matches none of the ${tags.length} tags of ${repository}; tags seen: ${shown.join(', ')}${more}`);
  }
  return { tag: matched[0], pattern: pattern.text, repository, seen: tags.length, matched: matched.length, pages };
}

/** Why this tag: the line for the log and the job summary. */
export function describeChoice(choice: TagChoice): string {
  return `${choice.tag}: the newest of ${choice.matched} tag(s) matching ${choice.pattern} among ${choice.seen} tag(s) of ${choice.repository} (${choice.pages} page(s))`;
}

/**
 * Why `source` cannot follow tags, or undefined when it can: it must be a registry reference, and not pinned by
 * digest. A tag written in it is an example of the pattern, and must match it (so a typo in the pattern fails
 * here, not on the registry); the build uses the newest matching tag, not that one.
 */
export function sourceTagProblem(source: Source, pattern: TagPattern): string | undefined {
  if (source.kind !== 'docker' && source.kind !== 'oras') return `source-tag-pattern follows a registry's tags; source ${source.uri} is not a docker:// or oras:// reference`;
  if (source.ref.digest) return `source-tag-pattern follows tags; source ${source.uri} is pinned to a digest`;
  const written = writtenTag(source.uri);
  if (written && !pattern.regex.test(written)) return `the tag ${written} in source does not match source-tag-pattern ${pattern.text}`;
  return undefined;
}

/** The tag as written in a `docker://` or `oras://` URI (parseImageRef fills in `latest` when there is none). */
function writtenTag(uri: string): string | undefined {
  const name = uri.replace(/^[a-z]+:\/\//, '').replace(/@.*$/, '');
  const last = name.slice(name.lastIndexOf('/') + 1);
  return last.includes(':') ? last.slice(last.indexOf(':') + 1) : undefined;
}

/** The source with the chosen tag in place of the one written. */
export function withTag(source: Source & { kind: 'docker' | 'oras' }, tag: string): Source {
  const ref = { ...source.ref, tag };
  return { kind: source.kind, ref, uri: `${source.kind}://${formatImageRef(ref)}` };
}

/**
 * The source to build: with a pattern, the newest matching tag of its repository, said in the log; without one,
 * the source as given.
 */
export async function followSourceTag(
  source: Source,
  pattern: TagPattern | undefined,
  options: ResolveOptions,
  say: (line: string) => void,
  chosen?: TagChoice,
): Promise<{ source: Source; choice?: TagChoice }> {
  if (!pattern || (source.kind !== 'docker' && source.kind !== 'oras')) return { source };
  // Chosen once per run: a tag pushed while the run goes on must not change what it builds from what it names.
  if (chosen) return { source: withTag(source, chosen.tag), choice: chosen };
  const choice = await chooseTag(source.ref, pattern, options);
  say(`source tag ${describeChoice(choice)}`);
  return { source: withTag(source, choice.tag), choice };
}
