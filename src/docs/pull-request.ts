// Opens, or updates, the one pull request that carries an edit of one docs file, through the GitHub REST API
// (no checkout). Idempotent: the branch is always the current base plus exactly one commit with the edit.
//
// The commit is made with the Git data API (tree, commit) and only then does the branch move, in one step.
// Resetting the branch to the base first and committing through the contents API would leave an open pull
// request without commits for a moment, and GitHub closes such a pull request for good.
import { createGitHubClient, githubMessage, httpStatus, redact, type GitHubClient } from './github-client.js';
import { UserError } from '../user-error.js';

export interface PullRequestSpec {
  token: string;
  /** Default https://api.github.com; a GitHub Enterprise Server API URL otherwise (…/api/v3). */
  apiUrl?: string;
  /** OWNER/REPO */
  repo: string;
  path: string;
  /** Default: the repository's default branch. */
  base?: string;
  branch: string;
  title: string;
  body: string;
  labels?: string[];
  reviewers?: string[];
  /** Applies when the pull request is created; the REST API cannot turn an existing one into a draft. */
  draft?: boolean;
  commitMessage: string;
  /**
   * Pure edit of the file's content; throws to abort (nothing is created then). Returns the new text.
   * Called exactly once per run, on the base's content, before anything is written; `title` and `body` are read
   * only after it returned, so they may depend on what it found.
   */
  edit: (content: string) => string;
  log?: (line: string) => void;
  /** Least time between two write requests; default one second, as GitHub advises. Tests use 0. */
  writeIntervalMs?: number;
}

export interface PullRequestResult {
  operation: 'created' | 'updated' | 'unchanged';
  number?: number;
  url?: string;
  branch: string;
  commitSha?: string;
  /** Labels or reviewers that could not be applied; the pull request itself is in place. */
  warnings?: string[];
}

/** An expected failure: the message says what went wrong and what to do, and never holds the token. */
export class PullRequestError extends UserError {
  override name = 'PullRequestError';
}

interface OpenPull {
  number: number;
  html_url: string;
  title: string;
  body: string | null;
  base: { ref: string };
  labels: { name?: string }[];
  requested_reviewers?: { login: string }[] | null;
}

export async function openOrUpdatePullRequest(spec: PullRequestSpec): Promise<PullRequestResult> {
  const log = (line: string) => spec.log?.(redact(line, spec.token));
  const [owner, repo, ...extra] = spec.repo.split('/');
  if (!owner || !repo || extra.length) throw new PullRequestError(`docs repository "${spec.repo}" is not of the form OWNER/REPO`);
  const where = `${owner}/${repo}`;
  const ctx: Context = { spec, owner, repo, where, log, octokit: createGitHubClient({ token: spec.token, apiUrl: spec.apiUrl, log, writeIntervalMs: spec.writeIntervalMs }) };
  try {
    // Another run publishing to the same branch at the same moment makes creating the branch or the pull request
    // fail with 422 "already exists". Its work is then on GitHub, so reading everything again settles it.
    for (let attempt = 1; ; attempt++) {
      try {
        return await run(ctx);
      } catch (error) {
        if (!(error instanceof ConcurrentRun) || attempt >= 3) throw error instanceof ConcurrentRun ? error.cause : error;
        log(`${error.message}; reading ${where} again`);
      }
    }
  } catch (error) {
    if (error instanceof PullRequestError) throw new PullRequestError(redact(error.message, spec.token), { cause: error.cause });
    throw new PullRequestError(redact(`Updating the docs on ${where} failed: ${githubMessage(error)}`, spec.token), { cause: error });
  }
}

/** Another run created the branch or the pull request between our read and our write. */
class ConcurrentRun extends Error {}

/** Runs a create request; its 422 "already exists" becomes a ConcurrentRun. */
async function create<T>(ctx: Context, what: string, call: () => Promise<T>): Promise<T> {
  try {
    return await ask(ctx, what, call);
  } catch (error) {
    const cause = (error as Error).cause;
    if (httpStatus(cause) === 422 && /already exists/i.test(githubMessage(cause))) {
      throw new ConcurrentRun(`Another run got there first while ${what} (${githubMessage(cause)})`, { cause: error });
    }
    throw error;
  }
}

interface Context {
  spec: PullRequestSpec;
  owner: string;
  repo: string;
  where: string;
  log: (line: string) => void;
  octokit: GitHubClient;
}

async function run(ctx: Context): Promise<PullRequestResult> {
  const { spec, owner, repo, where, log, octokit } = ctx;
  const { branch, path } = spec;

  // 1. Read: the repository, the base head, the file there. Nothing is written before the edit succeeded.
  const repository = await ask(ctx, 'reading the repository', () => octokit.rest.repos.get({ owner, repo }), {
    404: `Docs repository ${where} not found, or the token cannot see it (a private repository needs a token with access to it). Check docs-repo and github-token.`,
  });
  if (repository.data.permissions && !repository.data.permissions.push) throw new PullRequestError(noWriteAccess(where, 'the token has read-only access'));
  const base = spec.base ?? repository.data.default_branch;
  if (base === branch) throw new PullRequestError(`The pull request branch "${branch}" is the base branch of ${where}; choose another branch name.`);
  const baseRef = await ask(ctx, `reading branch ${base}`, () => octokit.rest.git.getRef({ owner, repo, ref: `heads/${base}` }), {
    404: `Base branch "${base}" not found in ${where}. Check docs-base.`,
  });
  const baseSha = baseRef.data.object.sha;
  const original = await readFile(ctx, baseSha, `Docs file "${path}" not found in ${where} on branch "${base}". Check docs-file and docs-base.`);
  log(`Read ${path} from ${where} at ${base} (${baseSha.slice(0, 7)})`);

  let edited: string;
  try {
    edited = spec.edit(original.text);
  } catch (error) {
    throw new PullRequestError(`Could not update ${path} from ${where} (${base}): ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }

  const pull = await findOpenPull(ctx, base);

  // 2. The base already says what we would write: nothing to propose, and an open pull request is stale.
  if (edited === original.text) {
    if (!pull) {
      log(`${path} on ${base} is already up to date; no pull request needed`);
      return { operation: 'unchanged', branch };
    }
    await ask(ctx, `closing pull request #${pull.number}`, () => octokit.rest.pulls.update({ owner, repo, pull_number: pull.number, state: 'closed' }));
    await deleteBranch(ctx);
    log(`${path} on ${base} already holds this change; closed the stale pull request #${pull.number} and deleted ${branch}`);
    return { operation: 'unchanged', number: pull.number, url: pull.html_url, branch };
  }

  // 3. The branch already is the current base plus exactly this edit: leave it alone.
  const branchSha = await readBranch(ctx);
  if (branchSha && (await holdsEdit(ctx, branchSha, baseSha, edited))) {
    if (pull) {
      const refreshed = await refreshPull(ctx, pull, base);
      log(`Branch ${branch} already holds this change on top of ${base}; pull request #${pull.number} ${refreshed ? 'title/body refreshed' : 'left as is'}`);
      const warnings = await decorate(ctx, pull, false);
      return withWarnings({ operation: 'unchanged', number: pull.number, url: pull.html_url, branch, commitSha: branchSha }, warnings);
    }
    const created = await createPull(ctx, base);
    const warnings = await decorate(ctx, created, true);
    return withWarnings({ operation: 'created', number: created.number, url: created.html_url, branch, commitSha: branchSha }, warnings);
  }

  // 4. (Re)build the branch: one commit with the edit on top of the current base head, then point the branch at it.
  const baseCommit = await ask(ctx, `reading commit ${baseSha.slice(0, 7)}`, () => octokit.rest.git.getCommit({ owner, repo, commit_sha: baseSha }));
  const tree = await ask(ctx, `writing ${path}`, () =>
    octokit.rest.git.createTree({ owner, repo, base_tree: baseCommit.data.tree.sha, tree: [{ path, mode: '100644', type: 'blob', content: edited }] }),
  );
  const commit = await ask(ctx, `committing ${path}`, () =>
    octokit.rest.git.createCommit({ owner, repo, message: spec.commitMessage, tree: tree.data.sha, parents: [baseSha] }),
  );
  const commitSha = commit.data.sha;
  let createdBranch = false;
  try {
    if (branchSha) {
      await ask(ctx, `updating branch ${branch}`, () => octokit.rest.git.updateRef({ owner, repo, ref: `heads/${branch}`, sha: commitSha, force: true }));
      log(`Rebuilt ${branch} on ${base} (${baseSha.slice(0, 7)}): ${commitSha.slice(0, 7)} ${spec.commitMessage}`);
    } else {
      await create(ctx, `creating branch ${branch}`, () => octokit.rest.git.createRef({ owner, repo, ref: `refs/heads/${branch}`, sha: commitSha }));
      createdBranch = true;
      log(`Created ${branch} on ${base} (${baseSha.slice(0, 7)}): ${commitSha.slice(0, 7)} ${spec.commitMessage}`);
    }
    if (pull) {
      await refreshPull(ctx, pull, base);
      log(`Updated pull request #${pull.number}: ${pull.html_url}`);
      return withWarnings({ operation: 'updated', number: pull.number, url: pull.html_url, branch, commitSha }, await decorate(ctx, pull, true));
    }
    // Once the pull request exists the run has succeeded: labels and reviewers only warn.
    const created = await createPull(ctx, base);
    return withWarnings({ operation: 'created', number: created.number, url: created.html_url, branch, commitSha }, await decorate(ctx, created, true));
  } catch (error) {
    // A branch this run created, with no pull request to show for it, is litter: remove it. Look again first:
    // a concurrent run may have opened its pull request from this branch meanwhile.
    if (createdBranch && !pull) {
      await findOpenPull(ctx, base)
        .then((other) => (other ? log(`Kept branch ${branch}: pull request #${other.number} uses it`) : deleteBranch(ctx)))
        .catch((e: unknown) => log(`Could not delete branch ${branch} after the failure: ${e instanceof Error ? e.message : String(e)}`));
    }
    throw error;
  }
}

/** Runs one request; turns GitHub's refusals into messages that say what to do. */
async function ask<T>(ctx: Context, what: string, call: () => Promise<T>, messages: Partial<Record<number, string>> = {}): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const status = httpStatus(error);
    const detail = githubMessage(error);
    let message: string;
    if (status !== undefined && messages[status]) message = messages[status]!;
    else if (status === 401) message = `GitHub rejected the token while ${what} on ${ctx.where} (401 ${detail}): it is invalid or expired. Check github-token.`;
    else if (status === 403 && /rate limit/i.test(detail)) message = `GitHub rate limit hit while ${what} on ${ctx.where}: ${detail}. Retry later.`;
    else if (status === 403) message = noWriteAccess(ctx.where, `GitHub answered 403 while ${what}: ${detail}`);
    else if (status !== undefined) message = `GitHub answered ${status} while ${what} on ${ctx.where}: ${detail}`;
    else message = `Could not reach GitHub while ${what} on ${ctx.where}: ${detail}`;
    throw new PullRequestError(message, { cause: error });
  }
}

function noWriteAccess(where: string, why: string): string {
  return (
    `The token lacks write access to ${where} (${why}). ` +
    `Use a token that may push to ${where} and open pull requests there (a fine-grained personal access token or a GitHub App token ` +
    `with Contents and Pull requests read/write) as github-token: the workflow's own GITHUB_TOKEN cannot write to another repository.`
  );
}

async function readFile(ctx: Context, ref: string, missing: string): Promise<{ text: string }> {
  const { octokit, owner, repo, spec, where } = ctx;
  const response = await ask(ctx, `reading ${spec.path}`, () => octokit.rest.repos.getContent({ owner, repo, path: spec.path, ref }), { 404: missing });
  const data = response.data;
  if (Array.isArray(data) || data.type !== 'file') throw new PullRequestError(`Docs file "${spec.path}" in ${where} is not a file (it is a ${Array.isArray(data) ? 'directory' : data.type}). Check docs-file.`);
  let base64: string;
  if ('content' in data && data.encoding === 'base64') base64 = data.content;
  else {
    // Over 1 MB the contents API leaves the content out; the git blobs API serves files up to 100 MB.
    const blob = await ask(ctx, `reading ${spec.path} (${data.size} bytes) as a git blob`, () => octokit.rest.git.getBlob({ owner, repo, file_sha: data.sha }));
    if (blob.data.encoding !== 'base64') throw new PullRequestError(`Docs file "${spec.path}" in ${where} is too large to edit through the API (${data.size} bytes).`);
    base64 = blob.data.content;
  }
  try {
    return { text: new TextDecoder('utf-8', { fatal: true }).decode(Buffer.from(base64, 'base64')) };
  } catch {
    throw new PullRequestError(`Docs file "${spec.path}" in ${where} is not UTF-8 text.`);
  }
}

async function readBranch(ctx: Context): Promise<string | undefined> {
  const { octokit, owner, repo, spec } = ctx;
  try {
    return (await ask(ctx, `reading branch ${spec.branch}`, () => octokit.rest.git.getRef({ owner, repo, ref: `heads/${spec.branch}` }))).data.object.sha;
  } catch (error) {
    if (httpStatus((error as Error).cause) === 404) return undefined;
    throw error;
  }
}

/** Whether the branch is exactly one commit on top of the base head and holds the edited file. */
async function holdsEdit(ctx: Context, branchSha: string, baseSha: string, edited: string): Promise<boolean> {
  const { octokit, owner, repo, spec } = ctx;
  const commit = await ask(ctx, `reading branch ${spec.branch}`, () => octokit.rest.git.getCommit({ owner, repo, commit_sha: branchSha }));
  if (commit.data.parents.length !== 1 || commit.data.parents[0]!.sha !== baseSha) return false;
  try {
    return (await readFile(ctx, branchSha, '')).text === edited;
  } catch (error) {
    // Gone, or no longer a text file: either way the branch does not hold the edit and gets rebuilt.
    const status = httpStatus((error as Error).cause);
    if (status === undefined || status === 404) return false;
    throw error;
  }
}

async function findOpenPull(ctx: Context, base: string): Promise<OpenPull | undefined> {
  const { octokit, owner, repo, spec } = ctx;
  const list = await ask(ctx, `looking for an open pull request from ${spec.branch}`, () =>
    octokit.rest.pulls.list({ owner, repo, state: 'open', head: `${owner}:${spec.branch}`, per_page: 100 }),
  );
  return list.data.find((p) => p.base.ref === base) ?? list.data[0];
}

/** Brings title, body and base of an open pull request in line with the spec; says whether anything changed. */
async function refreshPull(ctx: Context, pull: OpenPull, base: string): Promise<boolean> {
  const { octokit, owner, repo, spec } = ctx;
  const changes: { title?: string; body?: string; base?: string } = {};
  if (pull.title !== spec.title) changes.title = spec.title;
  if ((pull.body ?? '') !== spec.body) changes.body = spec.body;
  if (pull.base.ref !== base) changes.base = base;
  if (!Object.keys(changes).length) return false;
  await ask(ctx, `updating pull request #${pull.number}`, () => octokit.rest.pulls.update({ owner, repo, pull_number: pull.number, ...changes }));
  return true;
}

async function createPull(ctx: Context, base: string): Promise<OpenPull> {
  const { octokit, owner, repo, spec, log } = ctx;
  const created = await create(ctx, `opening a pull request from ${spec.branch}`, () =>
    octokit.rest.pulls.create({ owner, repo, head: spec.branch, base, title: spec.title, body: spec.body, draft: spec.draft ?? false }),
  );
  log(`Opened pull request #${created.data.number}: ${created.data.html_url}`);
  return created.data;
}

/** Adds missing labels and reviewers. Their failures do not undo the pull request; they come back as warnings. */
async function decorate(ctx: Context, pull: OpenPull, requestReviews: boolean): Promise<string[]> {
  const { octokit, owner, repo, spec, log } = ctx;
  const warnings: string[] = [];
  const have = new Set(pull.labels.map((l) => l.name));
  const labels = (spec.labels ?? []).filter((l) => !have.has(l));
  if (labels.length) {
    try {
      await octokit.rest.issues.addLabels({ owner, repo, issue_number: pull.number, labels });
      log(`Labelled #${pull.number}: ${labels.join(', ')}`);
    } catch (error) {
      warnings.push(`Could not add labels ${labels.join(', ')} to #${pull.number}: ${githubMessage(error)}`);
    }
  }
  const requested = new Set((pull.requested_reviewers ?? []).map((u) => u.login.toLowerCase()));
  // Re-requesting on every run would notify reviewers again; ask only when the content changed.
  const reviewers = requestReviews ? (spec.reviewers ?? []).filter((r) => !requested.has(r.toLowerCase())) : [];
  if (reviewers.length) {
    try {
      await octokit.rest.pulls.requestReviewers({ owner, repo, pull_number: pull.number, reviewers });
      log(`Requested review on #${pull.number} from ${reviewers.join(', ')}`);
    } catch (error) {
      warnings.push(`Could not request review from ${reviewers.join(', ')} on #${pull.number}: ${githubMessage(error)}`);
    }
  }
  for (const w of warnings) log(`Warning: ${w}`);
  return warnings;
}

async function deleteBranch(ctx: Context): Promise<void> {
  const { octokit, owner, repo, spec, log } = ctx;
  try {
    await octokit.rest.git.deleteRef({ owner, repo, ref: `heads/${spec.branch}` });
    log(`Deleted branch ${spec.branch}`);
  } catch (error) {
    // Already gone (422 "Reference does not exist") is what we wanted.
    if (httpStatus(error) !== 422) throw error;
  }
}

function withWarnings(result: PullRequestResult, warnings: string[]): PullRequestResult {
  return warnings.length ? { ...result, warnings } : result;
}
