// Bundles the action (dist/index.js) and the CLI (dist/cli.js) with esbuild. Dependencies are ESM and CommonJS
// mixed, so the bundle gets a `require` for the CommonJS ones; native addons (ssh2's optional crypto) stay
// out and are loaded at run time when present.
import { build } from 'esbuild';
import { rm, chmod, cp, mkdir, readFile } from 'node:fs/promises';

// `--outdir DIR` bundles elsewhere (the freshness test compares that with the committed dist/).
const at = process.argv.indexOf('--outdir');
const outdir = at > 0 ? process.argv[at + 1] : 'dist';

await rm(outdir, { recursive: true, force: true });
await build({
  entryPoints: { index: 'src/index.ts', cli: 'src/cli.ts', post: 'src/post.ts' },
  outdir,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  minify: true,
  // Names kept and linked source maps shipped (without the sources' text, which the stack traces do not need):
  // the entry points turn source maps on, so a bug's stack names src/ files and lines.
  keepNames: true,
  sourcemap: 'linked',
  sourcesContent: false,
  legalComments: 'linked',
  define: { BUILD_IMAGE_VERSION: JSON.stringify(JSON.parse(await readFile('package.json', 'utf8')).version) },
  chunkNames: 'chunks/[name]-[hash]',
  external: ['*.node', 'cpu-features'],
  // CommonJS dependencies expect `require`, `__filename` and `__dirname` (ssh2's poly1305 does).
  banner: {
    js: [
      "import { createRequire as __cr } from 'node:module';",
      "import { fileURLToPath as __fup } from 'node:url';",
      "import { dirname as __dn } from 'node:path';",
      'const require = __cr(import.meta.url);',
      'const __filename = __fup(import.meta.url);',
      'const __dirname = __dn(__filename);',
    ].join(' '),
  },
  logLevel: 'warning',
});
await chmod(`${outdir}/cli.js`, 0o755);
// Payloads and other files shipped with the action.
await mkdir(`${outdir}/assets`, { recursive: true });
await cp('assets', `${outdir}/assets`, { recursive: true }).catch((e) => {
  if (e.code !== 'ENOENT') throw e;
});
