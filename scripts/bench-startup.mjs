// Cold start of the bundled CLI to a parsed, validated configuration (`build-image build ... --print-config`),
// against bare `node -e 0` in the same run, and the size of the bundle. Usage: npm run bench:startup [-- --json]
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const json = process.argv.includes('--json');
const rounds = Number(process.env.ROUNDS ?? 21);
const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-startup-'));
writeFileSync(path.join(dir, 'x.def'), 'Bootstrap: docker\nFrom: ubuntu:24.04\n');

function time(args) {
  const start = process.hrtime.bigint();
  const r = spawnSync(process.execPath, args, { cwd: dir, encoding: 'utf8' });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed: ${r.stderr}`);
  return ms;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const cli = path.resolve('dist/cli.js');
const ours = [];
const bare = [];
time([cli, 'build', '--definition', 'x.def', '--print-config']); // warm the page cache, as a second run would be
for (let i = 0; i < rounds; i++) {
  ours.push(time([cli, 'build', '--definition', 'x.def', '--print-config']));
  bare.push(time(['-e', '0']));
}
rmSync(dir, { recursive: true, force: true });

function sizeOf(p) {
  const s = statSync(p);
  return s.isDirectory() ? readdirSync(p).reduce((n, f) => n + sizeOf(path.join(p, f)), 0) : s.size;
}
const jsBytes = (p) => readdirSync(p, { recursive: true }).filter((f) => f.endsWith('.js')).reduce((n, f) => n + statSync(path.join(p, f)).size, 0);
const result = {
  cold_start_ms: Number(median(ours).toFixed(1)),
  node_baseline_ms: Number(median(bare).toFixed(1)),
  ratio: Number((median(ours) / median(bare)).toFixed(2)),
  overhead_ms: Number((median(ours) - median(bare)).toFixed(1)),
  bundle_bytes: jsBytes('dist'),
  dist_bytes: sizeOf('dist'),
  rounds,
};
if (json) console.log(JSON.stringify(result));
else {
  console.log(`cold start to parsed config: ${result.cold_start_ms} ms (bare node ${result.node_baseline_ms} ms, ratio ${result.ratio}, goal < 150 ms)`);
  console.log(`bundle: ${(result.bundle_bytes / 1048576).toFixed(2)} MiB of JavaScript (goal < 3 MB), dist/ ${(result.dist_bytes / 1048576).toFixed(2)} MiB`);
}
