// Debian's registry (distribution 2.8) answers `GET /v2/NAME/tags/list` with every tag in one page and ignores
// `n` and `last` (tried: `?n=2` on five tags returns all five, no Link header). Registries that page (Docker Hub,
// GHCR, NGC, distribution 3) answer at most `n` tags, in lexical order after `last`, with
// `Link: </v2/NAME/tags/list?last=T&n=N>; rel="next"` while more remain, and cap `n` themselves. This proxy puts
// that paging in front of the real registry and passes every other request, and the registry's own answers
// (authentication challenges included), through unchanged.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PagingProxy {
  /** `127.0.0.1:PORT` */
  host: string;
  /** The path and query of every page of tags served (not the requests the registry refused), in order. */
  tagRequests: string[];
  stop(): Promise<void>;
}

export async function startPagingProxy(target: string, maxPage: number): Promise<PagingProxy> {
  const tagRequests: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, `http://${target}`);
    const tagList = req.method === 'GET' && /^\/v2\/.+\/tags\/list$/.test(url.pathname);
    const headers = { ...req.headers, host: target };
    const upstream = http.request({ host: target.split(':')[0], port: Number(target.split(':')[1]), method: req.method, path: tagList ? url.pathname : req.url, headers }, (answer) => {
      if (!tagList || answer.statusCode !== 200) {
        res.writeHead(answer.statusCode!, answer.headers);
        return void answer.pipe(res);
      }
      const chunks: Buffer[] = [];
      answer.on('data', (c: Buffer) => chunks.push(c));
      answer.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { name: string; tags: string[] };
        const last = url.searchParams.get('last');
        const n = Math.min(Number(url.searchParams.get('n') ?? maxPage) || maxPage, maxPage);
        tagRequests.push(req.url!);
        const rest = [...body.tags].sort().filter((t) => last === null || t > last);
        const page = rest.slice(0, n);
        const headers: Record<string, string> = { 'content-type': 'application/json; charset=utf-8' };
        if (rest.length > n) headers.link = `<${url.pathname}?last=${encodeURIComponent(page[page.length - 1])}&n=${n}>; rel="next"`;
        res.writeHead(200, headers);
        res.end(JSON.stringify({ name: body.name, tags: page }));
      });
    });
    upstream.on('error', () => {
      res.statusCode = 502;
      res.end();
    });
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    tagRequests,
    stop: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
