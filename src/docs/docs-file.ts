// Reads the docs file at the base branch before anything is changed: the pipeline needs the table's paths so
// that retention never deletes an image the documentation still lists.
import { createGitHubClient, githubMessage, httpStatus, redact } from './github-client.js';
import { PullRequestError } from './pull-request.js';

export interface RepositoryFileSpec {
  token: string;
  apiUrl?: string;
  /** OWNER/REPO */
  repo: string;
  path: string;
  /** Default: the repository's default branch. */
  base?: string;
  log: (line: string) => void;
}

export async function readRepositoryFile(spec: RepositoryFileSpec): Promise<string> {
  const client = createGitHubClient({ token: spec.token, apiUrl: spec.apiUrl, log: spec.log });
  const [owner, repo] = spec.repo.split('/');
  let ref = spec.base;
  try {
    ref ??= (await client.rest.repos.get({ owner, repo })).data.default_branch;
    const { data } = await client.rest.repos.getContent({ owner, repo, path: spec.path, ref });
    if (Array.isArray(data) || data.type !== 'file' || !('content' in data)) {
      throw new PullRequestError(`docs-file ${spec.path} in ${spec.repo} is not a file`);
    }
    return Buffer.from(data.content, 'base64').toString('utf8');
  } catch (error) {
    if (error instanceof PullRequestError) throw error;
    const status = httpStatus(error);
    if (status === 404 && ref) throw new PullRequestError(`docs-file ${spec.path} not found in ${spec.repo} at ${ref}`);
    if (status === 404) throw new PullRequestError(`docs-repo ${spec.repo} not found, or the token cannot see it`);
    if (status === 401) throw new PullRequestError('github-token was refused (401): it is invalid or expired');
    throw new PullRequestError(redact(`reading ${spec.repo}:${spec.path} failed: ${githubMessage(error)}`, spec.token));
  }
}

/**
 * Checks, before anything irreversible happens on the cluster, that the token can do what the docs step needs: push
 * a branch (contents: write) and open a pull request (pull requests: write). A classic token's scopes come in the
 * `x-oauth-scopes` header; a fine-grained or App token's missing permission shows as a 403 on a request that would
 * change nothing even if allowed (a ref to a commit that does not exist, a pull request from a branch that does not
 * exist: 422 when permitted).
 */
export async function checkDocsAccess(spec: Omit<RepositoryFileSpec, 'path'>): Promise<void> {
  // The probes' 422 and 403 answers are expected; what they mean is said below, not logged as client errors.
  const client = createGitHubClient({ token: spec.token, apiUrl: spec.apiUrl, log: (line) => !/ - (403|404|422) /.test(line) && spec.log(line) });
  const [owner, repo] = spec.repo.split('/');
  const missing = (what: string) =>
    new PullRequestError(`github-token cannot ${what} in ${spec.repo}; give it ${what.startsWith('open') ? 'pull requests' : 'contents'}: write. Nothing was published`);
  const probe = async (what: string, request: () => Promise<unknown>) => {
    try {
      await request();
    } catch (error) {
      const status = httpStatus(error);
      if (status === 422) return; // allowed: refused only because the probe points at nothing
      if (status === 403 || status === 404) throw missing(what);
      throw new PullRequestError(redact(`checking the token's access to ${spec.repo} failed: ${githubMessage(error)}`, spec.token));
    }
  };
  const probeBranch = `build-image-access-check-${Date.now().toString(36)}`;
  const { data, headers } = await client.rest.repos.get({ owner, repo }).catch((error: unknown) => {
    if (httpStatus(error) === 404) throw new PullRequestError(`docs-repo ${spec.repo} not found, or the token cannot see it`);
    if (httpStatus(error) === 401) throw new PullRequestError('github-token was refused (401): it is invalid or expired');
    throw new PullRequestError(redact(`reading ${spec.repo} failed: ${githubMessage(error)}`, spec.token));
  });
  const scopes = headers['x-oauth-scopes'];
  if (typeof scopes === 'string') {
    const granted = scopes.split(',').map((s) => s.trim());
    if (!granted.includes('repo') && !(granted.includes('public_repo') && !data.private)) throw missing('push a branch');
  }
  if (data.permissions && !data.permissions.push) throw missing('push a branch');
  await probe('push a branch', () => client.rest.git.createRef({ owner, repo, ref: `refs/heads/${probeBranch}`, sha: '0'.repeat(40) }));
  await probe('open a pull request', () => client.rest.pulls.create({ owner, repo, head: probeBranch, base: spec.base ?? data.default_branch, title: 'build-image access check' }));
}
