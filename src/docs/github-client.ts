// The Octokit client for the docs repository: retries transient failures, waits out rate limits, goes through
// the environment's proxy, and never lets the token reach a log line or an error message.
import { Octokit } from '@octokit/rest';
import { retry } from '@octokit/plugin-retry';
import { throttling } from '@octokit/plugin-throttling';
import Bottleneck from 'bottleneck';
import { defaultOf } from '../config/schema.js';
import { proxyFetch } from '../util/proxy.js';

export const DEFAULT_API_URL = defaultOf('github-api-url');

const GitHub = Octokit.plugin(retry, throttling);
export type GitHubClient = InstanceType<typeof GitHub>;

// Waiting longer than this for a rate limit to reset would stall a CI job for no good reason.
const MAX_RATE_LIMIT_WAIT_S = 15 * 60;

export interface ClientOptions {
  token: string;
  apiUrl?: string;
  log: (line: string) => void;
  /**
   * Least time between two writes. Default: the throttling plugin's one second (three for writes that notify),
   * which GitHub asks for to stay clear of secondary rate limits; tests against a local server pass 0.
   */
  writeIntervalMs?: number;
}

export function createGitHubClient({ token, apiUrl, log, writeIntervalMs }: ClientOptions): GitHubClient {
  const wait = (kind: string) => (retryAfter: number, options: { method?: string; url?: string }, _octokit: unknown, retryCount: number) => {
    const what = `${options.method ?? ''} ${options.url ?? ''}`.trim();
    if (retryCount < 2 && retryAfter <= MAX_RATE_LIMIT_WAIT_S) {
      log(`GitHub ${kind} hit on ${what}; retrying in ${retryAfter}s`);
      return true;
    }
    log(`GitHub ${kind} hit on ${what}; giving up`);
    return false;
  };
  return new GitHub({
    auth: token,
    baseUrl: (apiUrl ?? DEFAULT_API_URL).replace(/\/+$/, ''),
    userAgent: 'build-image',
    // Through HTTPS_PROXY / HTTP_PROXY unless NO_PROXY matches, as create-pull-request's octokit-client does.
    request: { fetch: proxyFetch },
    // Octokit's own debug/info/warn lines could echo request options; route only warnings and errors, redacted.
    log: {
      debug: () => {},
      info: () => {},
      warn: (message: string) => log(redact(`GitHub client warning: ${message}`, token)),
      // A 404 on a read is how "does this branch or file exist?" is answered; the caller says what it means.
      error: (message: string) => {
        if (!/^(GET|HEAD) \S+ - 404\b/.test(message)) log(redact(`GitHub client error: ${message}`, token));
      },
    },
    throttle: {
      onRateLimit: wait('rate limit'),
      onSecondaryRateLimit: wait('secondary rate limit'),
      // Writes that notify people (opening a pull request, …) get three seconds by default; scale them alike.
      ...(writeIntervalMs === undefined
        ? {}
        : {
            write: new Bottleneck.Group({ maxConcurrent: 1, minTime: writeIntervalMs }),
            notifications: new Bottleneck.Group({ maxConcurrent: 1, minTime: writeIntervalMs * 3 }),
          }),
    },
    // 409 (conflict) is an answer, not a hiccup: retrying the same request cannot succeed.
    retry: { doNotRetry: [400, 401, 403, 404, 409, 410, 422, 451] },
  });
}

export function redact(text: string, token: string): string {
  return token ? text.split(token).join('***') : text;
}

/** The HTTP status of an Octokit request error, if it is one. */
export function httpStatus(error: unknown): number | undefined {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : undefined;
}

/** GitHub's own words for a failed request (its `message`, plus any validation details). */
export function githubMessage(error: unknown): string {
  const data = (error as { response?: { data?: unknown } } | null)?.response?.data as
    | { message?: string; errors?: { message?: string; code?: string; field?: string }[] }
    | undefined;
  if (data && typeof data === 'object' && data.message) {
    const details = (data.errors ?? []).map((e) => e.message ?? [e.field, e.code].filter(Boolean).join(' ')).filter(Boolean);
    return details.length ? `${data.message}: ${details.join('; ')}` : data.message;
  }
  return error instanceof Error ? error.message : String(error);
}
