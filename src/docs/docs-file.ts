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
