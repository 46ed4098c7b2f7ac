// Requests to GitHub and to registries honour HTTPS_PROXY / HTTP_PROXY / NO_PROXY (upper or lower case), as
// curl, git and the runner itself do: cluster-side runners usually reach the internet only through a proxy.
import { UserError } from '../user-error.js';

/** The proxy failed or refused the request (never the credentials in the message). */
export class ProxyError extends UserError {
  override name = 'ProxyError';
}

type Env = NodeJS.ProcessEnv;

/**
 * The proxy variable that applies to a protocol, in undici's EnvHttpProxyAgent's order (lower case first, HTTPS
 * falling back to HTTP). A value without a scheme (`proxy:3128`) means http://, as curl reads it.
 */
function proxyVariable(protocol: string, env: Env): { name: string; value: string } | undefined {
  const names = protocol === 'https:' ? ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'] : ['http_proxy', 'HTTP_PROXY'];
  for (const name of names) {
    const value = env[name]?.trim();
    if (value) return { name, value: /^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}` };
  }
  return undefined;
}

/** A proxy URL as a log may show it: scheme, host and port, never the user or password. */
export function shownProxy(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return '(an unparsable proxy URL)';
  }
}

/** Passwords in the proxy variables, for masking. */
export function proxySecrets(env: Env = process.env): string[] {
  return ['https_proxy', 'HTTPS_PROXY', 'http_proxy', 'HTTP_PROXY'].flatMap((name) => urlSecrets(env[name]));
}

/** The password of a URL with credentials, as written and decoded. */
export function urlSecrets(text: string | undefined): string[] {
  if (!text) return [];
  try {
    const { password } = new URL(text);
    return password ? [...new Set([password, decodeURIComponent(password)])] : [];
  } catch {
    return [];
  }
}

let dispatcher: { key: string; agent: Promise<import('undici').Dispatcher> } | undefined;

/** One agent for the process, rebuilt when the variables change (tests set them per case); NO_PROXY is read per request. */
function envAgent(env: Env): Promise<import('undici').Dispatcher> {
  const httpProxy = proxyVariable('http:', env)?.value;
  const httpsProxy = proxyVariable('https:', env)?.value;
  const key = JSON.stringify([httpProxy, httpsProxy]);
  if (dispatcher?.key !== key) {
    void dispatcher?.agent.then((old) => old.close()).catch(() => undefined);
    const agent = import('undici').then(({ EnvHttpProxyAgent }) => {
      // undici flags the class experimental with a process warning; create-pull-request relies on it as well, and a
      // "(node) ExperimentalWarning" line would only puzzle someone reading the job log.
      const emitWarning = process.emitWarning;
      process.emitWarning = () => undefined;
      try {
        // Plain-HTTP targets are forwarded (`GET http://...`), not tunnelled: proxies such as Squid allow CONNECT
        // only to port 443 by default.
        return new EnvHttpProxyAgent({ httpProxy, httpsProxy, proxyTunnel: false } as ConstructorParameters<typeof EnvHttpProxyAgent>[0]);
      } finally {
        process.emitWarning = emitWarning;
      }
    });
    dispatcher = { key, agent };
  }
  return dispatcher.agent;
}

/**
 * `fetch` through the proxy the environment names for the URL, unless NO_PROXY matches it (undici's
 * EnvHttpProxyAgent decides). Without any proxy variable it is the global fetch, unchanged. A proxy that cannot be
 * reached or refuses is named in a ProxyError.
 */
export const proxyFetch: typeof fetch = async (input, init) => {
  const env = process.env;
  const url = new URL(input instanceof Request ? input.url : String(input));
  const proxy = proxyVariable(url.protocol, env);
  if (!proxy) return fetch(input, init);
  const { fetch: undiciFetch } = await import('undici');
  try {
    return (await undiciFetch(input as Parameters<typeof undiciFetch>[0], {
      ...(init as Parameters<typeof undiciFetch>[1]),
      dispatcher: await envAgent(env).catch((error: unknown) => {
        // undici's reason may quote the URL, password and all.
        throw new ProxyError(`${proxy.name} cannot be used as a proxy URL (${(error as Error).name}); give http://HOST:PORT`);
      }),
    })) as unknown as Response;
  } catch (error) {
    throw proxyFailure(error, url, proxy) ?? error;
  }
};

type Cause = { code?: unknown; message?: string; address?: string; port?: number; hostname?: string; cause?: unknown };

/** A ProxyError when the failure is the proxy's: it refused the tunnel or the credentials, or could not be reached. */
function proxyFailure(error: unknown, url: URL, proxy: { name: string; value: string }): ProxyError | undefined {
  const shown = `the proxy ${shownProxy(proxy.value)} (${proxy.name})`;
  // undici wraps the reason one or two levels deep (fetch failed → cancelled → the proxy's answer).
  const causes: Cause[] = [];
  for (let c = (error as Cause | undefined)?.cause; c && typeof c === 'object' && causes.length < 5; c = (c as Cause).cause) causes.push(c as Cause);
  for (const cause of causes) {
    const status = /Proxy response \((\d+)\)|Proxy Authentication Required \((407)\)/.exec(cause.message ?? '');
    const code = status?.[1] ?? status?.[2];
    if (code === '407') {
      return new ProxyError(`${shown} refused ${url.host}: HTTP 407, proxy authentication required (check the user and password in its URL, http://USER:PASSWORD@HOST:PORT)`, { cause: error });
    }
    if (code) return new ProxyError(`${shown} refused the tunnel to ${url.host}: HTTP ${code}`, { cause: error });
  }
  let proxyUrl: URL;
  try {
    proxyUrl = new URL(proxy.value);
  } catch {
    return new ProxyError(`${proxy.name} is not a URL such as http://proxy.example.com:3128`, { cause: error });
  }
  const proxyHost = proxyUrl.hostname.replace(/^\[|\]$/g, '');
  const proxyPort = Number(proxyUrl.port || (proxyUrl.protocol === 'https:' ? 443 : 80));
  const atProxy = causes.find((c) => typeof c.code === 'string' && ((c.address === proxyHost && c.port === proxyPort) || c.hostname === proxyHost));
  if (atProxy) return new ProxyError(`cannot reach ${shown} for ${url.host} (${String(atProxy.code)})`, { cause: error });
  return undefined;
}
