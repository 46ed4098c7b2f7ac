// The launcher half of `npm run bench:streams`: a child process that prints one huge line (10 MB and 50 MB, no
// newline inside), read through the project's process runner (src/util/process.ts, bundled on the fly with
// esbuild), against a plain Node.js reader that only counts the bytes. Each reader runs in a process of its own,
// which reports its wall time and its peak memory (maxRSS).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const MB = 1000 * 1000;

/** A shell command printing `bytes` of "x" with no newline until the end, then a short report line. */
function producer(bytes) {
  return `head -c ${bytes} /dev/zero | tr '\\0' x; printf '\\n{"smoke":"build-image/pytorch-smoke","ok":true}\\n'`;
}

export async function benchLauncher() {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-bench-streams-'));
  try {
    const ours = path.join(dir, 'ours.mjs');
    await build({
      stdin: {
        contents: `import { runProcess } from ${JSON.stringify(path.resolve('src/util/process.ts'))};
const started = process.hrtime.bigint();
const run = await runProcess('sh', ['-c', process.argv[2]], { keepLine: (l) => l.includes('build-image/pytorch-smoke') });
if (!run.stdout.includes('"ok":true')) throw new Error('the report line was not found');
console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - started) / 1e9, maxRssMiB: process.resourceUsage().maxRSS / 1024 }));`,
        resolveDir: process.cwd(),
        loader: 'ts',
      },
      outfile: ours,
      bundle: true,
      format: 'esm',
      platform: 'node',
      logLevel: 'silent',
    });
    const plain = path.join(dir, 'plain.mjs');
    writeFileSync(
      plain,
      `import { spawn } from 'node:child_process';
const started = process.hrtime.bigint();
let bytes = 0;
const child = spawn('sh', ['-c', process.argv[2]], { stdio: ['ignore', 'pipe', 'inherit'] });
child.stdout.on('data', (d) => (bytes += d.length));
child.on('close', () => console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - started) / 1e9, maxRssMiB: process.resourceUsage().maxRSS / 1024, bytes })));`,
    );
    const measure = (script, bytes) => {
      const r = spawnSync(process.execPath, [script, producer(bytes)], { encoding: 'utf8', maxBuffer: 16 * MB });
      if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
      return JSON.parse(r.stdout.trim().split('\n').pop());
    };
    const results = {};
    for (const mb of [10, 50]) {
      const a = measure(ours, mb * MB);
      const b = measure(plain, mb * MB);
      results[`line_${mb}mb`] = { ours_s: a.seconds, ours_peak_mib: a.maxRssMiB, plain_s: b.seconds, plain_peak_mib: b.maxRssMiB, ratio: a.seconds / b.seconds };
    }
    results.time_growth_50_over_10 = results.line_50mb.ours_s / results.line_10mb.ours_s;
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const results = await benchLauncher();
  console.log(JSON.stringify(results, null, 2));
}
