// `remote-name` templates: `pytorch-{tag}.sif`, `gromacs-{git-tag}.sif`, `nightly-{date}-{short-sha}.sif`. Each
// placeholder is filled from the run: the image name, the source's tag, today's UTC date, the git tag that triggered
// the run, the commit. An unknown placeholder, or one this run has no value for, is refused with the reason.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseDefinition } from '../build/definition.js';
import { substitute } from '../build/recipe.js';
import { parseImageRef } from '../build/source.js';

export const PLACEHOLDERS = ['name', 'tag', 'date', 'git-tag', 'short-sha'] as const;
export type Placeholder = (typeof PLACEHOLDERS)[number];

/**
 * Each placeholder's value, or why it has none; `later`: known only once the build has chosen the source's tag
 * (`source-tag-pattern`), so the placeholder stays in the name until then (`nameWithTag`).
 */
export type NameValues = Record<Placeholder, { value: string } | { missing: string } | { later: true }>;

export interface NameFacts {
  name?: string;
  /** The raw `source` input, or the definition file (absolute) with its build args. */
  source?: string;
  definition?: string;
  buildArgs: Record<string, string>;
  env: NodeJS.ProcessEnv;
  now: Date;
  /** The build follows the newest tag matching `source-tag-pattern`: `{tag}` is the tag it chooses. */
  tagFollowsPattern?: boolean;
}

export function nameValues(facts: NameFacts): NameValues {
  const ref = facts.env.GITHUB_REF ?? '';
  const tag: NameValues['tag'] = facts.tagFollowsPattern ? { later: true } : sourceTag(facts);
  return {
    name: facts.name ? { value: facts.name } : { missing: 'set `name`' },
    tag,
    date: { value: facts.now.toISOString().slice(0, 10).replace(/-/g, '') },
    'git-tag': ref.startsWith('refs/tags/')
      ? { value: ref.slice('refs/tags/'.length) }
      : { missing: `the run was not triggered by a tag (GITHUB_REF is ${ref ? `'${ref}'` : 'not set'})` },
    'short-sha': /^[0-9a-f]{7,}$/.test(facts.env.GITHUB_SHA ?? '')
      ? { value: facts.env.GITHUB_SHA!.slice(0, 7) }
      : { missing: 'GITHUB_SHA is not set (outside GitHub Actions)' },
  };
}

/** The tag of the image the build starts from: `source`'s, or the last stage's `From:` in the definition. */
function sourceTag(facts: NameFacts): NameValues['tag'] {
  let from: string | undefined;
  if (facts.source) from = facts.source;
  else if (facts.definition && existsSync(facts.definition)) {
    const def = parseDefinition(readFileSync(facts.definition, 'utf8'));
    const last = def.stages[def.stages.length - 1];
    const raw = last?.from && substitute(last.from, facts.buildArgs, last.argumentsDefaults);
    if (!raw) return { missing: `${path.basename(facts.definition)} has no From: line in its last stage` };
    if (last.bootstrap !== 'docker' && last.bootstrap !== 'oras') return { missing: `the last stage of ${path.basename(facts.definition)} bootstraps from ${last.bootstrap ?? 'nothing'}, not a registry image with a tag` };
    from = `${last.bootstrap}://${raw.replace(/^(docker|oras):\/\//, '')}`;
  } else return { missing: 'no `source` or `definition` in this step to take the tag from (a separate publish job can take the build job\'s `remote-name` output)' };
  const m = /^(?:docker|oras):\/\/(.+)$/.exec(from);
  if (!m) return { missing: `the source ${from} is not a registry image, so it has no tag` };
  try {
    const parsed = parseImageRef(m[1]);
    return parsed.tag && !/[{}]/.test(parsed.tag) ? { value: parsed.tag } : { missing: `the source ${from} is pinned by digest only, without a tag` };
  } catch (error) {
    return { missing: `the source ${from} cannot be read: ${(error as Error).message}` };
  }
}

/** The template with its placeholders filled in, or the problem with it. */
export function expandName(template: string, values: NameValues): { value: string } | { problem: string } {
  const problems: string[] = [];
  const value = template.replace(/\{([^{}]*)\}/g, (whole, key: string) => {
    if (!(PLACEHOLDERS as readonly string[]).includes(key)) {
      problems.push(`unknown placeholder ${whole}; the placeholders are ${PLACEHOLDERS.map((p) => `{${p}}`).join(', ')}`);
      return whole;
    }
    const v = values[key as Placeholder];
    if ('later' in v) return whole;
    if ('missing' in v) {
      problems.push(`${whole} has no value in this run: ${v.missing}`);
      return whole;
    }
    return v.value;
  });
  return problems.length > 0 ? { problem: problems.join('; ') } : { value };
}

/** A remote name whose `{tag}` waited for the build to choose the source's tag. */
export function nameWithTag(name: string, tag: string): string {
  return name.split('{tag}').join(tag);
}
