// A fake GitHub (Enterprise-style: API under /api/v3) on a loopback port, holding repositories in memory:
// real git object ids, refs, files, pull requests, labels, reviewers and per-token access. It answers the REST
// endpoints this project uses the way GitHub does (statuses, error bodies, 409/422 cases), and checks every
// request and response against GitHub's OpenAPI description; `assertNoViolations()` fails a test on any mismatch.
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { OpenApiValidator, type MatchedOperation } from './github-openapi.js';

export type Access = 'read' | 'write';
/** What a fine-grained token may do: `contents` covers branches and commits, `pullRequests` pull requests and their labels. */
export interface Grant {
  contents: Access;
  pullRequests: Access;
}

export interface TokenOptions {
  login: string;
  /** Access per repository (`OWNER/REPO`); repositories not listed are readable when public. */
  repos?: Record<string, Access | Grant>;
  /**
   * `classic`: a personal access token; GET /repos reports the token's permissions.
   * `integration`: a GitHub App or Actions token; GET /repos reports none, writes fail with 403.
   */
  kind?: 'classic' | 'integration';
}

export interface RepoOptions {
  defaultBranch?: string;
  files?: Record<string, string>;
  private?: boolean;
  /** Logins allowed to be requested as reviewers (the owner always is). */
  collaborators?: string[];
}

export interface CommitInfo {
  sha: string;
  parents: string[];
  message: string;
  files: Record<string, string>;
}

export interface PullInfo {
  number: number;
  state: 'open' | 'closed';
  title: string;
  body: string | null;
  draft: boolean;
  head: string;
  headSha: string;
  base: string;
  labels: string[];
  reviewers: string[];
  user: string;
}

export interface Exchange {
  method: string;
  path: string;
  operationId?: string;
  status: number;
  requestBody?: unknown;
  authorization?: string;
}

export interface GitHubServer {
  /** API base URL, e.g. `http://127.0.0.1:PORT/api/v3` — pass it as `apiUrl`. */
  apiUrl: string;
  /** Web base URL for html links. */
  webUrl: string;
  exchanges: Exchange[];
  violations: string[];
  addToken(token: string, options: TokenOptions): void;
  createRepo(fullName: string, options?: RepoOptions): void;
  /** Commits straight to a branch (as a person pushing would); `null` deletes a file. Returns the commit sha. */
  commit(fullName: string, branch: string, files: Record<string, string | null>, message?: string): string;
  branches(fullName: string): string[];
  branchSha(fullName: string, branch: string): string | undefined;
  getCommit(fullName: string, sha: string): CommitInfo;
  file(fullName: string, ref: string, path: string): string | undefined;
  pulls(fullName: string): PullInfo[];
  /**
   * Runs `action` just before the next request for `operationId` is handled: to stage a race, or, when it returns
   * a reply, to answer instead (an outage, a rate limit). Injected replies are validated like any other.
   */
  beforeNext(operationId: string, action: () => void | Reply): void;
  /** Throws, listing every request or response that did not match GitHub's OpenAPI description. */
  assertNoViolations(): void;
  stop(): Promise<void>;
}

interface Person {
  name: string;
  email: string;
  date: string;
}
interface Commit {
  sha: string;
  tree: string;
  files: Map<string, string>;
  parents: string[];
  message: string;
  author: Person;
  committer: Person;
}
interface Pull {
  number: number;
  id: number;
  title: string;
  body: string | null;
  state: 'open' | 'closed';
  draft: boolean;
  head: string;
  /** Head sha when the pull request was closed (the branch may be gone). */
  closedSha?: string;
  base: string;
  labels: string[];
  reviewers: string[];
  user: string;
  createdAt: string;
  updatedAt: string;
  closedAt: string | null;
}
interface Label {
  id: number;
  name: string;
  color: string;
}
interface Repo {
  owner: string;
  name: string;
  id: number;
  private: boolean;
  defaultBranch: string;
  refs: Map<string, string>;
  commits: Map<string, Commit>;
  pulls: Pull[];
  labels: Map<string, Label>;
  collaborators: Set<string>;
  createdAt: string;
}
interface Token {
  token: string;
  login: string;
  kind: 'classic' | 'integration';
  repos: Record<string, Grant>;
}
export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: Record<string, unknown>,
  ) {
    super(String(body.message));
  }
}

let validator: OpenApiValidator | undefined;
// Git objects are content-addressed, so one store serves every server and repository.
const blobs = new Map<string, Buffer>();
const trees = new Map<string, Map<string, string>>();

function gitHash(type: string, content: Buffer): string {
  return createHash('sha1').update(Buffer.concat([Buffer.from(`${type} ${content.length}\0`), content])).digest('hex');
}

export function blobSha(content: string | Buffer): string {
  const buf = Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8');
  const sha = gitHash('blob', buf);
  blobs.set(sha, buf);
  return sha;
}

// Git's tree object for a flat path → blob map: nested trees, entries sorted as git sorts them.
function treeSha(files: Map<string, string>): string {
  const body = Buffer.concat(treeEntries(files).map((i) => Buffer.concat([Buffer.from(`${i.type === 'tree' ? '40000' : '100644'} ${i.path}\0`), Buffer.from(i.sha, 'hex')])));
  const sha = gitHash('tree', body);
  trees.set(sha, files);
  return sha;
}

/** The top level of a tree, in git's order (a directory sorts as if its name ended in `/`). */
function treeEntries(files: Map<string, string>): { path: string; mode: string; type: 'blob' | 'tree'; sha: string }[] {
  const entries = new Map<string, Map<string, string> | string>();
  for (const [file, sha] of files) {
    const [head, ...rest] = file.split('/');
    if (rest.length === 0) entries.set(head!, sha);
    else {
      let sub = entries.get(head!);
      if (!(sub instanceof Map)) entries.set(head!, (sub = new Map()));
      sub.set(rest.join('/'), sha);
    }
  }
  const items = [...entries].map(([path, v]) =>
    v instanceof Map ? { path, mode: '040000', type: 'tree' as const, sha: treeSha(v) } : { path, mode: '100644', type: 'blob' as const, sha: v },
  );
  return items.sort((a, b) => Buffer.compare(Buffer.from(a.type === 'tree' ? `${a.path}/` : a.path), Buffer.from(b.type === 'tree' ? `${b.path}/` : b.path)));
}

function makeCommit(files: Map<string, string>, parents: string[], message: string, who: Person): Commit {
  const tree = treeSha(files);
  const stamp = `${Math.floor(Date.parse(who.date) / 1000)} +0000`;
  const text = [`tree ${tree}`, ...parents.map((p) => `parent ${p}`), `author ${who.name} <${who.email}> ${stamp}`, `committer ${who.name} <${who.email}> ${stamp}`, '', message].join('\n');
  return { sha: gitHash('commit', Buffer.from(text)), tree, files, parents, message, author: who, committer: who };
}

/** GitHub wraps base64 content at 60 columns with a trailing newline. */
function wrapBase64(buf: Buffer): string {
  return (buf.toString('base64').match(/.{1,60}/g) ?? []).map((l) => `${l}\n`).join('');
}

export async function startGitHubServer(): Promise<GitHubServer> {
  validator ??= OpenApiValidator.load();
  const openapi = validator;
  const repos = new Map<string, Repo>();
  const tokens = new Map<string, Token>();
  const users = new Map<string, number>();
  const exchanges: Exchange[] = [];
  const violations: string[] = [];
  const hooks = new Map<string, () => void | Reply>();
  let nextId = 1000;
  let origin = '';
  let clock = Date.parse('2026-01-01T00:00:00Z');
  const now = () => new Date((clock += 1000)).toISOString().replace(/\.\d+Z$/, 'Z');

  const api = () => `${origin}/api/v3`;
  const userId = (login: string) => {
    if (!users.has(login)) users.set(login, nextId++);
    return users.get(login)!;
  };
  const person = (login: string): Person => ({ name: login, email: `${userId(login)}+${login}@users.noreply.github.com`, date: now() });
  const nodeId = (kind: string, id: number | string) => Buffer.from(`0:${kind}${id}`).toString('base64').replace(/=+$/, '');

  function getRepo(fullName: string): Repo {
    const repo = repos.get(fullName.toLowerCase());
    if (!repo) throw new Error(`no repository ${fullName}`);
    return repo;
  }

  function resolve(repo: Repo, ref: string): Commit | undefined {
    const sha = repo.refs.get(`heads/${ref}`) ?? repo.refs.get(ref.replace(/^refs\//, '')) ?? (/^[0-9a-f]{40}$/.test(ref) ? ref : undefined);
    return sha ? repo.commits.get(sha) : undefined;
  }

  function isAncestor(repo: Repo, ancestor: string, of: string): boolean {
    const seen = new Set<string>();
    const queue = [of];
    while (queue.length) {
      const sha = queue.pop()!;
      if (sha === ancestor) return true;
      if (seen.has(sha)) continue;
      seen.add(sha);
      queue.push(...(repo.commits.get(sha)?.parents ?? []));
    }
    return false;
  }

  // GitHub closes an open pull request whose head branch is gone or holds nothing the base does not.
  function settle(repo: Repo): void {
    for (const pull of repo.pulls) {
      if (pull.state !== 'open') continue;
      const head = repo.refs.get(`heads/${pull.head}`);
      const base = repo.refs.get(`heads/${pull.base}`);
      if (head && base && !isAncestor(repo, head, base)) continue;
      pull.closedSha = head ?? pull.closedSha;
      pull.state = 'closed';
      pull.closedAt = pull.updatedAt = now();
    }
  }

  function commitTo(repo: Repo, branch: string, changes: Record<string, string | null>, message: string, who: Person): Commit {
    const parent = resolve(repo, branch);
    const files = new Map(parent?.files ?? []);
    for (const [file, content] of Object.entries(changes)) {
      if (content === null) files.delete(file);
      else files.set(file, blobSha(content));
    }
    const commit = makeCommit(files, parent ? [parent.sha] : [], message, who);
    repo.commits.set(commit.sha, commit);
    repo.refs.set(`heads/${branch}`, commit.sha);
    settle(repo);
    return commit;
  }

  // ---- JSON shapes, as GitHub returns them ----

  function userJson(login: string) {
    const id = userId(login);
    const url = `${api()}/users/${login}`;
    return {
      login,
      id,
      node_id: nodeId('User', id),
      avatar_url: `${origin}/avatars/u/${id}`,
      gravatar_id: '',
      url,
      html_url: `${origin}/${login}`,
      followers_url: `${url}/followers`,
      following_url: `${url}/following{/other_user}`,
      gists_url: `${url}/gists{/gist_id}`,
      starred_url: `${url}/starred{/owner}{/repo}`,
      subscriptions_url: `${url}/subscriptions`,
      organizations_url: `${url}/orgs`,
      repos_url: `${url}/repos`,
      events_url: `${url}/events{/privacy}`,
      received_events_url: `${url}/received_events`,
      type: 'User',
      site_admin: false,
    };
  }

  function repoJson(repo: Repo, token?: Token) {
    const full = `${repo.owner}/${repo.name}`;
    const url = `${api()}/repos/${full}`;
    const pushedAt = now();
    const json: Record<string, unknown> = {
      id: repo.id,
      node_id: nodeId('Repository', repo.id),
      name: repo.name,
      full_name: full,
      owner: userJson(repo.owner),
      private: repo.private,
      html_url: `${origin}/${full}`,
      description: null,
      fork: false,
      url,
      archive_url: `${url}/{archive_format}{/ref}`,
      assignees_url: `${url}/assignees{/user}`,
      blobs_url: `${url}/git/blobs{/sha}`,
      branches_url: `${url}/branches{/branch}`,
      collaborators_url: `${url}/collaborators{/collaborator}`,
      comments_url: `${url}/comments{/number}`,
      commits_url: `${url}/commits{/sha}`,
      compare_url: `${url}/compare/{base}...{head}`,
      contents_url: `${url}/contents/{+path}`,
      contributors_url: `${url}/contributors`,
      deployments_url: `${url}/deployments`,
      downloads_url: `${url}/downloads`,
      events_url: `${url}/events`,
      forks_url: `${url}/forks`,
      git_commits_url: `${url}/git/commits{/sha}`,
      git_refs_url: `${url}/git/refs{/sha}`,
      git_tags_url: `${url}/git/tags{/sha}`,
      git_url: `git://${origin.replace(/^https?:\/\//, '')}/${full}.git`,
      issue_comment_url: `${url}/issues/comments{/number}`,
      issue_events_url: `${url}/issues/events{/number}`,
      issues_url: `${url}/issues{/number}`,
      keys_url: `${url}/keys{/key_id}`,
      labels_url: `${url}/labels{/name}`,
      languages_url: `${url}/languages`,
      merges_url: `${url}/merges`,
      milestones_url: `${url}/milestones{/number}`,
      notifications_url: `${url}/notifications{?since,all,participating}`,
      pulls_url: `${url}/pulls{/number}`,
      releases_url: `${url}/releases{/id}`,
      ssh_url: `git@${origin.replace(/^https?:\/\/|:\d+$/g, '')}:${full}.git`,
      stargazers_url: `${url}/stargazers`,
      statuses_url: `${url}/statuses/{sha}`,
      subscribers_url: `${url}/subscribers`,
      subscription_url: `${url}/subscription`,
      tags_url: `${url}/tags`,
      teams_url: `${url}/teams`,
      trees_url: `${url}/git/trees{/sha}`,
      clone_url: `${origin}/${full}.git`,
      mirror_url: null,
      hooks_url: `${url}/hooks`,
      svn_url: `${origin}/${full}`,
      homepage: null,
      language: null,
      forks_count: 0,
      forks: 0,
      stargazers_count: 0,
      watchers_count: 0,
      watchers: 0,
      size: 1,
      default_branch: repo.defaultBranch,
      open_issues_count: repo.pulls.filter((p) => p.state === 'open').length,
      open_issues: repo.pulls.filter((p) => p.state === 'open').length,
      is_template: false,
      topics: [],
      has_issues: true,
      has_projects: true,
      has_wiki: true,
      has_pages: false,
      has_downloads: true,
      has_discussions: false,
      archived: false,
      disabled: false,
      visibility: repo.private ? 'private' : 'public',
      pushed_at: pushedAt,
      created_at: repo.createdAt,
      updated_at: pushedAt,
      license: null,
      allow_forking: true,
      web_commit_signoff_required: false,
    };
    if (token?.kind === 'classic') {
      const access = accessOf(repo, token);
      json.permissions = { admin: false, maintain: false, push: access === 'write', triage: access === 'write', pull: true };
    }
    return json;
  }

  function fullRepoJson(repo: Repo, token?: Token) {
    return { ...repoJson(repo, token), network_count: 0, subscribers_count: 0, temp_clone_token: '' };
  }

  function labelJson(repo: Repo, label: Label) {
    return {
      id: label.id,
      node_id: nodeId('Label', label.id),
      url: `${api()}/repos/${repo.owner}/${repo.name}/labels/${encodeURIComponent(label.name)}`,
      name: label.name,
      // The label schema allows null, the one inside pull requests only a string; GitHub sends "" for none.
      description: '',
      color: label.color,
      default: false,
    };
  }

  function headSha(repo: Repo, pull: Pull): string {
    return pull.closedSha ?? repo.refs.get(`heads/${pull.head}`) ?? '0'.repeat(40);
  }

  function pullSimpleJson(repo: Repo, pull: Pull) {
    const full = `${repo.owner}/${repo.name}`;
    const url = `${api()}/repos/${full}/pulls/${pull.number}`;
    const issue = `${api()}/repos/${full}/issues/${pull.number}`;
    const html = `${origin}/${full}/pull/${pull.number}`;
    const sha = headSha(repo, pull);
    const branchJson = (ref: string, at: string) => ({ label: `${repo.owner}:${ref}`, ref, sha: at, user: userJson(repo.owner), repo: repoJson(repo) });
    return {
      url,
      id: pull.id,
      node_id: nodeId('PullRequest', pull.id),
      html_url: html,
      diff_url: `${html}.diff`,
      patch_url: `${html}.patch`,
      issue_url: issue,
      commits_url: `${url}/commits`,
      review_comments_url: `${url}/comments`,
      review_comment_url: `${api()}/repos/${full}/pulls/comments{/number}`,
      comments_url: `${issue}/comments`,
      statuses_url: `${api()}/repos/${full}/statuses/${sha}`,
      number: pull.number,
      state: pull.state,
      locked: false,
      title: pull.title,
      user: userJson(pull.user),
      body: pull.body,
      labels: pull.labels.map((name) => labelJson(repo, repo.labels.get(name)!)),
      milestone: null,
      active_lock_reason: null,
      created_at: pull.createdAt,
      updated_at: pull.updatedAt,
      closed_at: pull.closedAt,
      merged_at: null,
      merge_commit_sha: null,
      assignee: null,
      assignees: [],
      requested_reviewers: pull.reviewers.map(userJson),
      requested_teams: [],
      head: branchJson(pull.head, sha),
      base: branchJson(pull.base, repo.refs.get(`heads/${pull.base}`) ?? '0'.repeat(40)),
      _links: {
        self: { href: url },
        html: { href: html },
        issue: { href: issue },
        comments: { href: `${issue}/comments` },
        review_comments: { href: `${url}/comments` },
        review_comment: { href: `${api()}/repos/${full}/pulls/comments{/number}` },
        commits: { href: `${url}/commits` },
        statuses: { href: `${api()}/repos/${full}/statuses/${sha}` },
      },
      author_association: pull.user === repo.owner ? 'OWNER' : 'COLLABORATOR',
      auto_merge: null,
      draft: pull.draft,
    };
  }

  function pullJson(repo: Repo, pull: Pull) {
    const head = repo.commits.get(headSha(repo, pull));
    const base = resolve(repo, pull.base);
    let commits = 0;
    for (let c = head; c && base && !isAncestor(repo, c.sha, base.sha); c = repo.commits.get(c.parents[0] ?? '')) commits++;
    let additions = 0;
    let deletions = 0;
    let changed = 0;
    const paths = new Set([...(head?.files.keys() ?? []), ...(base?.files.keys() ?? [])]);
    for (const file of paths) {
      const a = base?.files.get(file);
      const b = head?.files.get(file);
      if (a === b) continue;
      changed++;
      const before = a ? blobs.get(a)!.toString('utf8').split('\n') : [];
      const after = b ? blobs.get(b)!.toString('utf8').split('\n') : [];
      const old = new Set(before);
      const added = after.filter((l) => !old.has(l)).length;
      additions += added;
      deletions += before.length - (after.length - added);
    }
    return {
      ...pullSimpleJson(repo, pull),
      merged: false,
      mergeable: null,
      rebaseable: null,
      mergeable_state: 'unknown',
      merged_by: null,
      comments: 0,
      review_comments: 0,
      maintainer_can_modify: false,
      commits,
      additions,
      deletions,
      changed_files: changed,
    };
  }

  function refJson(repo: Repo, ref: string) {
    const sha = repo.refs.get(ref)!;
    const base = `${api()}/repos/${repo.owner}/${repo.name}`;
    return { ref: `refs/${ref}`, node_id: nodeId('Ref', `${repo.id}:${ref}`), url: `${base}/git/refs/${ref}`, object: { sha, type: 'commit', url: `${base}/git/commits/${sha}` } };
  }

  function commitJson(repo: Repo, commit: Commit) {
    const base = `${api()}/repos/${repo.owner}/${repo.name}`;
    const html = `${origin}/${repo.owner}/${repo.name}/commit`;
    return {
      sha: commit.sha,
      node_id: nodeId('Commit', commit.sha),
      url: `${base}/git/commits/${commit.sha}`,
      html_url: `${html}/${commit.sha}`,
      author: commit.author,
      committer: commit.committer,
      tree: { sha: commit.tree, url: `${base}/git/trees/${commit.tree}` },
      message: commit.message,
      parents: commit.parents.map((sha) => ({ sha, url: `${base}/git/commits/${sha}`, html_url: `${html}/${sha}` })),
      verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
    };
  }

  function contentJson(repo: Repo, ref: string, file: string, sha: string) {
    const full = `${repo.owner}/${repo.name}`;
    const encoded = encodeURI(file);
    const self = `${api()}/repos/${full}/contents/${encoded}?ref=${encodeURIComponent(ref)}`;
    const gitUrl = `${api()}/repos/${full}/git/blobs/${sha}`;
    const html = `${origin}/${full}/blob/${encodeURIComponent(ref)}/${encoded}`;
    return {
      name: file.split('/').pop()!,
      path: file,
      sha,
      size: blobs.get(sha)!.length,
      url: self,
      html_url: html,
      git_url: gitUrl,
      download_url: `${origin}/raw/${full}/${encodeURIComponent(ref)}/${encoded}`,
      type: 'file',
      _links: { self, git: gitUrl, html },
    };
  }

  // ---- errors as GitHub words them ----

  let docsUrl = 'https://docs.github.com/rest';
  const fail = (status: number, message: string, extra: Record<string, unknown> = {}): never => {
    throw new HttpError(status, { message, documentation_url: docsUrl, status: String(status), ...extra });
  };
  const notFound = () => fail(404, 'Not Found');
  const invalid = (errors: Record<string, unknown>[]) => fail(422, 'Validation Failed', { errors });

  type Area = keyof Grant;
  function accessOf(repo: Repo, token: Token | undefined, area: Area = 'contents'): Access | undefined {
    const granted = token?.repos[`${repo.owner}/${repo.name}`.toLowerCase()];
    return granted?.[area] ?? (repo.private ? undefined : 'read');
  }

  /** The repository named in the path, if the token may `need` it in `area`: 404 when unseen, 403 when read-only. */
  function repoFor(params: Record<string, string>, token: Token | undefined, need: Access, area: Area = 'contents'): Repo {
    const repo = repos.get(`${params.owner}/${params.repo}`.toLowerCase());
    if (!repo || !accessOf(repo, token)) return notFound();
    if (need === 'write' && !token) fail(401, 'Requires authentication');
    if (need === 'write' && accessOf(repo, token, area) !== 'write') {
      fail(403, token?.kind === 'integration' ? 'Resource not accessible by integration' : 'Resource not accessible by personal access token');
    }
    return repo;
  }

  // ---- the endpoints ----

  type Handler = (ctx: { params: Record<string, string>; query: URLSearchParams; body: Record<string, unknown>; token?: Token }) => Reply;
  const handlers: Record<string, Handler> = {
    'repos/get': ({ params, token }) => ({ status: 200, body: fullRepoJson(repoFor(params, token, 'read'), token) }),

    'git/get-ref': ({ params, token }) => {
      const repo = repoFor(params, token, 'read');
      return repo.refs.has(params.ref!) ? { status: 200, body: refJson(repo, params.ref!) } : notFound();
    },

    'git/create-ref': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write');
      const ref = String(body.ref);
      const sha = String(body.sha);
      if (!/^refs\/[^/]+\/.+/.test(ref)) fail(422, "Reference name must start with 'refs/' and have at least two slashes.");
      if (!repo.commits.has(sha)) fail(422, 'Object does not exist');
      const name = ref.replace(/^refs\//, '');
      if (repo.refs.has(name)) fail(422, 'Reference already exists');
      repo.refs.set(name, sha);
      settle(repo);
      return { status: 201, body: refJson(repo, name) };
    },

    'git/update-ref': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write');
      const current = repo.refs.get(params.ref!);
      const sha = String(body.sha);
      if (!current) fail(422, 'Reference does not exist');
      if (!repo.commits.has(sha)) fail(422, 'Object does not exist');
      if (!body.force && !isAncestor(repo, current!, sha)) fail(422, 'Update is not a fast forward');
      repo.refs.set(params.ref!, sha);
      settle(repo);
      return { status: 200, body: refJson(repo, params.ref!) };
    },

    'git/delete-ref': ({ params, token }) => {
      const repo = repoFor(params, token, 'write');
      const ref = params.ref!;
      if (!repo.refs.has(ref)) fail(422, 'Reference does not exist');
      if (ref === `heads/${repo.defaultBranch}`) fail(422, 'Cannot delete the default branch');
      for (const pull of repo.pulls) if (pull.state === 'open' && `heads/${pull.head}` === ref) pull.closedSha = repo.refs.get(ref);
      repo.refs.delete(ref);
      settle(repo);
      return { status: 204 };
    },

    'git/create-tree': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write');
      let files = new Map<string, string>();
      if (body.base_tree !== undefined) {
        const base = trees.get(String(body.base_tree));
        if (!base) fail(422, 'Invalid tree info');
        files = new Map(base);
      }
      for (const entry of body.tree as { path: string; mode: string; type: string; sha?: string | null; content?: string }[]) {
        if (entry.sha !== undefined && entry.content !== undefined) fail(422, 'Must supply either tree.sha or tree.content, not both');
        if (entry.type !== 'blob' || (entry.mode !== '100644' && entry.mode !== '100755')) fail(422, `The fake GitHub server only takes file blobs (${entry.path})`);
        if (entry.sha === null) files.delete(entry.path);
        else if (entry.content !== undefined) files.set(entry.path, blobSha(entry.content));
        else if (entry.sha && blobs.has(entry.sha)) files.set(entry.path, entry.sha);
        else fail(422, 'tree.sha is not a valid blob');
      }
      const sha = treeSha(files);
      const base = `${api()}/repos/${repo.owner}/${repo.name}/git`;
      const tree = treeEntries(files).map((e) => ({
        ...e,
        ...(e.type === 'blob' ? { size: blobs.get(e.sha)!.length } : {}),
        url: `${base}/${e.type === 'blob' ? 'blobs' : 'trees'}/${e.sha}`,
      }));
      return { status: 201, body: { sha, url: `${base}/trees/${sha}`, tree, truncated: false } };
    },

    'git/create-commit': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write');
      const files = trees.get(String(body.tree));
      if (!files) return fail(422, 'Tree SHA does not exist');
      const parents = (body.parents as string[] | undefined) ?? [];
      if (parents.some((p) => !repo.commits.has(p))) fail(422, 'Parent SHA does not exist or is not a commit object');
      const who = body.author ? { date: now(), ...(body.author as Omit<Person, 'date'>) } : person(token!.login);
      const commit = makeCommit(new Map(files), parents, String(body.message), who);
      repo.commits.set(commit.sha, commit);
      return { status: 201, body: commitJson(repo, commit) };
    },

    'git/get-commit': ({ params, token }) => {
      const repo = repoFor(params, token, 'read');
      const commit = repo.commits.get(params.commit_sha!);
      return commit ? { status: 200, body: commitJson(repo, commit) } : notFound();
    },

    'git/get-blob': ({ params, token }) => {
      const repo = repoFor(params, token, 'read');
      const sha = params.file_sha!;
      const reachable = [...repo.commits.values()].some((c) => [...c.files.values()].includes(sha));
      const blob = reachable ? blobs.get(sha) : undefined;
      if (!blob) return notFound();
      const url = `${api()}/repos/${repo.owner}/${repo.name}/git/blobs/${sha}`;
      return { status: 200, body: { sha, node_id: nodeId('Blob', sha), size: blob.length, url, content: wrapBase64(blob), encoding: 'base64' } };
    },

    'repos/get-content': ({ params, query, token }) => {
      const repo = repoFor(params, token, 'read');
      const ref = query.get('ref') ?? repo.defaultBranch;
      const commit = resolve(repo, ref);
      if (!commit) return fail(404, `No commit found for the ref ${ref}`);
      const file = params.path!.replace(/^\/+|\/+$/g, '');
      const sha = commit.files.get(file);
      if (sha) {
        // As GitHub does: files over 1 MB come without content (encoding "none"); the git blobs API has them.
        const blob = blobs.get(sha)!;
        if (blob.length > 1024 * 1024) return { status: 200, body: { ...contentJson(repo, ref, file, sha), content: '', encoding: 'none' } };
        return { status: 200, body: { ...contentJson(repo, ref, file, sha), content: wrapBase64(blob), encoding: 'base64' } };
      }
      const prefix = `${file}/`;
      const children = new Map<string, string | undefined>();
      for (const [p, s] of commit.files) {
        if (!p.startsWith(prefix)) continue;
        const rest = p.slice(prefix.length);
        children.set(rest.split('/')[0]!, rest.includes('/') ? undefined : s);
      }
      if (!children.size) return notFound();
      // Directories are listed, as GitHub does; only files carry a sha and size here.
      const listing = [...children].map(([name, s]) => {
        const child = `${file}/${name}`;
        if (s) return contentJson(repo, ref, child, s);
        const self = `${api()}/repos/${repo.owner}/${repo.name}/contents/${encodeURI(child)}?ref=${encodeURIComponent(ref)}`;
        return { type: 'dir', size: 0, name, path: child, sha: '0'.repeat(40), url: self, git_url: null, html_url: null, download_url: null, _links: { self, git: null, html: null } };
      });
      return { status: 200, body: listing };
    },

    'repos/create-or-update-file-contents': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write');
      const branch = typeof body.branch === 'string' ? body.branch : repo.defaultBranch;
      const file = params.path!.replace(/^\/+|\/+$/g, '');
      const head = resolve(repo, branch);
      if (!repo.refs.has(`heads/${branch}`) || !head) return fail(404, `Branch ${branch} not found`);
      const content = String(body.content);
      if (!/^[A-Za-z0-9+/\s]*={0,2}\s*$/.test(content)) fail(422, 'content is not valid Base64');
      const existing = head.files.get(file);
      if (existing && body.sha === undefined) fail(422, 'Invalid request.\n\n"sha" wasn\'t supplied.');
      if (existing && body.sha !== existing) fail(409, `${file} does not match ${String(body.sha)}`);
      const login = token!.login;
      const who = body.committer ? { ...(body.committer as Person), date: now() } : person(login);
      const commit = commitTo(repo, branch, { [file]: Buffer.from(content, 'base64').toString('utf8') }, String(body.message), who);
      return {
        status: existing ? 200 : 201,
        body: { content: contentJson(repo, branch, file, commit.files.get(file)!), commit: commitJson(repo, commit) },
      };
    },

    'pulls/list': ({ params, query, token }) => {
      const repo = repoFor(params, token, 'read');
      const state = query.get('state') ?? 'open';
      const head = query.get('head');
      const base = query.get('base');
      const perPage = Number(query.get('per_page') ?? 30);
      const page = Number(query.get('page') ?? 1);
      const list = repo.pulls
        .filter((p) => state === 'all' || p.state === state)
        .filter((p) => !head || `${repo.owner}:${p.head}`.toLowerCase() === head.toLowerCase())
        .filter((p) => !base || p.base === base)
        .sort((a, b) => b.number - a.number);
      return { status: 200, body: list.slice((page - 1) * perPage, page * perPage).map((p) => pullSimpleJson(repo, p)) };
    },

    'pulls/create': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write', 'pullRequests');
      const headName = String(body.head).replace(new RegExp(`^${repo.owner}:`, 'i'), '');
      const base = String(body.base);
      const headCommit = repo.refs.get(`heads/${headName}`);
      const baseCommit = repo.refs.get(`heads/${base}`);
      if (typeof body.title !== 'string') invalid([{ resource: 'PullRequest', field: 'title', code: 'missing_field' }]);
      if (!headCommit) invalid([{ resource: 'PullRequest', field: 'head', code: 'invalid' }]);
      if (!baseCommit) invalid([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
      if (repo.pulls.some((p) => p.state === 'open' && p.head === headName && p.base === base)) {
        invalid([{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${repo.owner}:${headName}.` }]);
      }
      if (isAncestor(repo, headCommit!, baseCommit!)) invalid([{ resource: 'PullRequest', code: 'custom', message: `No commits between ${base} and ${headName}` }]);
      const at = now();
      const pull: Pull = {
        number: repo.pulls.length + 1,
        id: nextId++,
        title: String(body.title),
        body: typeof body.body === 'string' ? body.body : null,
        state: 'open',
        draft: body.draft === true,
        head: headName,
        base,
        labels: [],
        reviewers: [],
        user: token!.login,
        createdAt: at,
        updatedAt: at,
        closedAt: null,
      };
      repo.pulls.push(pull);
      return { status: 201, body: pullJson(repo, pull) };
    },

    'pulls/update': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write', 'pullRequests');
      const pull = repo.pulls.find((p) => p.number === Number(params.pull_number)) ?? notFound();
      if (typeof body.base === 'string' && !repo.refs.has(`heads/${body.base}`)) invalid([{ resource: 'PullRequest', field: 'base', code: 'invalid' }]);
      if (typeof body.title === 'string') pull.title = body.title;
      if (typeof body.body === 'string') pull.body = body.body;
      if (typeof body.base === 'string') pull.base = body.base;
      if (body.state === 'closed' && pull.state === 'open') {
        pull.state = 'closed';
        pull.closedAt = now();
      } else if (body.state === 'open' && pull.state === 'closed') {
        if (!repo.refs.has(`heads/${pull.head}`)) invalid([{ resource: 'PullRequest', field: 'state', code: 'invalid' }]);
        pull.state = 'open';
        pull.closedAt = null;
        pull.closedSha = undefined;
      }
      pull.updatedAt = now();
      return { status: 200, body: pullJson(repo, pull) };
    },

    'issues/add-labels': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write', 'pullRequests');
      const pull = repo.pulls.find((p) => p.number === Number(params.issue_number)) ?? notFound();
      const wanted = (Array.isArray(body) ? body : ((body.labels as unknown[]) ?? [])).map((l) => (typeof l === 'string' ? l : String((l as { name: unknown }).name)));
      for (const name of wanted) {
        if (!repo.labels.has(name)) repo.labels.set(name, { id: nextId++, name, color: 'ededed' });
        if (!pull.labels.includes(name)) pull.labels.push(name);
      }
      pull.updatedAt = now();
      return { status: 200, body: pull.labels.map((name) => labelJson(repo, repo.labels.get(name)!)) };
    },

    'pulls/request-reviewers': ({ params, token, body }) => {
      const repo = repoFor(params, token, 'write', 'pullRequests');
      const pull = repo.pulls.find((p) => p.number === Number(params.pull_number)) ?? notFound();
      const wanted = (body.reviewers as string[] | undefined) ?? [];
      if (wanted.includes(pull.user)) fail(422, 'Review cannot be requested from pull request author.');
      if (wanted.some((login) => !repo.collaborators.has(login.toLowerCase()))) {
        fail(422, `Reviews may only be requested from collaborators. One or more of the users or teams you specified is not a collaborator of the ${repo.owner}/${repo.name} repository.`);
      }
      for (const login of wanted) if (!pull.reviewers.includes(login)) pull.reviewers.push(login);
      pull.updatedAt = now();
      return { status: 201, body: pullSimpleJson(repo, pull) };
    },
  };

  // ---- the HTTP plumbing: parse, validate, dispatch, validate, answer ----

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks).toString('utf8');
    const url = new URL(req.url ?? '/', origin);
    const method = req.method ?? 'GET';
    const exchange: Exchange = { method, path: url.pathname + url.search, status: 0, authorization: req.headers.authorization };
    exchanges.push(exchange);
    const where = `${method} ${url.pathname}`;
    let reply: Reply;
    let match: MatchedOperation | undefined;
    docsUrl = 'https://docs.github.com/rest';
    try {
      let body: unknown;
      if (raw.length) {
        try {
          body = JSON.parse(raw);
        } catch {
          violations.push(`${where}: request body is not JSON`);
          fail(400, 'Problems parsing JSON');
        }
      }
      exchange.requestBody = body;
      if (!url.pathname.startsWith('/api/v3/')) {
        violations.push(`${where}: outside the API root /api/v3`);
        return notFound();
      }
      const pathname = url.pathname.slice('/api/v3'.length);
      match = openapi.match(method, pathname);
      if (!match) {
        violations.push(`${where}: no such endpoint in GitHub's REST API`);
        return notFound();
      }
      exchange.operationId = match.operationId;
      docsUrl = openapi.docsUrl(match) ?? docsUrl;
      const problems = openapi.validateRequest(match, url.searchParams, body);
      if (problems.length) {
        violations.push(...problems.map((p) => `${where} (${match!.operationId}) request: ${p}`));
        fail(422, 'Invalid request.\n\n' + problems.join('\n'));
      }
      const auth = /^(?:token|bearer)\s+(.+)$/i.exec(req.headers.authorization ?? '')?.[1];
      const token = auth === undefined ? undefined : tokens.get(auth);
      if (auth !== undefined && !token) fail(401, 'Bad credentials');
      const hook = hooks.get(match.operationId);
      hooks.delete(match.operationId);
      const injected = hook?.();
      if (injected) return send(res, exchange, match, injected);
      const handler = handlers[match.operationId];
      if (!handler) {
        violations.push(`${where}: ${match.operationId} is not implemented by the fake GitHub server`);
        return fail(404, 'Not Found');
      }
      reply = handler({ params: match.params, query: url.searchParams, body: (body ?? {}) as Record<string, unknown>, token });
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      reply = { status: error.status, body: error.body };
    }
    send(res, exchange, match, reply);
  }

  function send(res: http.ServerResponse, exchange: Exchange, match: MatchedOperation | undefined, reply: Reply): void {
    exchange.status = reply.status;
    if (match) {
      for (const p of openapi.validateResponse(match, reply.status, reply.body)) violations.push(`${exchange.method} ${exchange.path} (${match.operationId}) response: ${p}`);
    }
    const headers: Record<string, string> = {
      'x-github-request-id': `FAKE:${exchanges.length}`,
      'x-ratelimit-limit': '5000',
      'x-ratelimit-remaining': String(5000 - exchanges.length),
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
      'x-ratelimit-used': String(exchanges.length),
      'x-ratelimit-resource': 'core',
      'x-github-api-version-selected': '2022-11-28',
    };
    Object.assign(headers, reply.headers);
    if (reply.body === undefined) {
      res.writeHead(reply.status, headers).end();
      return;
    }
    res.writeHead(reply.status, { ...headers, 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(reply.body));
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      violations.push(`${req.method} ${req.url}: the fake GitHub server crashed: ${error instanceof Error ? error.stack : String(error)}`);
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify({ message: 'Server Error' }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    apiUrl: `${origin}/api/v3`,
    webUrl: origin,
    exchanges,
    violations,
    addToken(token, options) {
      const repoAccess: Record<string, Grant> = {};
      for (const [name, access] of Object.entries(options.repos ?? {})) {
        repoAccess[name.toLowerCase()] = typeof access === 'string' ? { contents: access, pullRequests: access } : access;
      }
      tokens.set(token, { token, login: options.login, repos: repoAccess, kind: options.kind ?? 'classic' });
    },
    createRepo(fullName, options = {}) {
      const [owner, name] = fullName.split('/');
      const branch = options.defaultBranch ?? 'main';
      const repo: Repo = {
        owner: owner!,
        name: name!,
        id: nextId++,
        private: options.private ?? false,
        defaultBranch: branch,
        refs: new Map(),
        commits: new Map(),
        pulls: [],
        labels: new Map(),
        collaborators: new Set([owner!, ...(options.collaborators ?? [])].map((l) => l.toLowerCase())),
        createdAt: now(),
      };
      repos.set(fullName.toLowerCase(), repo);
      commitTo(repo, branch, options.files ?? { 'README.md': `# ${name}\n` }, 'Initial commit', person(owner!));
    },
    commit(fullName, branch, files, message = 'Update files') {
      const repo = getRepo(fullName);
      return commitTo(repo, branch, files, message, person(repo.owner)).sha;
    },
    branches(fullName) {
      return [...getRepo(fullName).refs.keys()].filter((r) => r.startsWith('heads/')).map((r) => r.slice('heads/'.length));
    },
    branchSha(fullName, branch) {
      return getRepo(fullName).refs.get(`heads/${branch}`);
    },
    getCommit(fullName, sha) {
      const commit = getRepo(fullName).commits.get(sha);
      if (!commit) throw new Error(`no commit ${sha} in ${fullName}`);
      const files: Record<string, string> = {};
      for (const [p, s] of commit.files) files[p] = blobs.get(s)!.toString('utf8');
      return { sha: commit.sha, parents: [...commit.parents], message: commit.message, files };
    },
    file(fullName, ref, file) {
      const sha = resolve(getRepo(fullName), ref)?.files.get(file);
      return sha ? blobs.get(sha)!.toString('utf8') : undefined;
    },
    pulls(fullName) {
      const repo = getRepo(fullName);
      return repo.pulls.map((p) => ({
        number: p.number,
        state: p.state,
        title: p.title,
        body: p.body,
        draft: p.draft,
        head: p.head,
        headSha: headSha(repo, p),
        base: p.base,
        labels: [...p.labels],
        reviewers: [...p.reviewers],
        user: p.user,
      }));
    },
    beforeNext(operationId, action) {
      hooks.set(operationId, action);
    },
    assertNoViolations() {
      if (violations.length) throw new Error(`Traffic that does not match GitHub's OpenAPI description:\n${violations.map((v) => `- ${v}`).join('\n')}`);
    },
    async stop() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    },
  };
}
