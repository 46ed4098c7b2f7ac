// The same definition built by `build-image build` (lint, provenance, verification, hashing included) and by
// plain `apptainer build`, alternating, so both see the same machine state. Prints medians and their ratio.
// Usage: npm run bench:build [-- --json] [-- --rounds N]
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const json = process.argv.includes('--json');
const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 5;
const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-bench-build-'));
copyFileSync('/bin/busybox', path.join(dir, 'busybox'));
// No network: a scratch image with a shell, some files and a %post that does real work.
writeFileSync(
  path.join(dir, 'bench.def'),
  `Bootstrap: scratch
%files
    ${dir}/busybox /bin/busybox
    ${dir}/busybox /bin/sh
%post
    /bin/busybox --install -s /bin
    mkdir -p /opt/data
    # About 96 MiB of incompressible data: mksquashfs then does a few seconds of real work, as it does for
    # a framework image, and fixed costs (process starts, linting, verification) are seen in proportion.
    i=0; while [ $i -lt 96 ]; do head -c 1048576 /dev/urandom > /opt/data/f$i; i=$((i+1)); done
%environment
    export BENCH=1
%labels
    purpose benchmark
`,
);

// What the action decides, so plain apptainer gets the same privileges.
const status = readFileSync('/proc/self/status', 'utf8');
const capEff = BigInt(`0x${/^CapEff:\s*([0-9a-f]+)/m.exec(status)[1]}`);
const all = (1n << BigInt(Number(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8')) + 1)) - 1n;
const fakeroot = process.getuid() !== 0 || (capEff & all) !== all ? ['--fakeroot'] : [];

function run(cmd, args) {
  const start = process.hrtime.bigint();
  const r = spawnSync(cmd, args, { cwd: dir, encoding: 'utf8' });
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stdout}\n${r.stderr}`);
  return s;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const cli = path.resolve('dist/cli.js');
const ours = [];
const plain = [];
run('apptainer', ['build', '--force', ...fakeroot, 'warm.sif', 'bench.def']);
for (let i = 0; i < rounds; i++) {
  const order = i % 2 === 0 ? ['ours', 'plain'] : ['plain', 'ours'];
  for (const which of order) {
    if (which === 'ours') ours.push(run(process.execPath, [cli, 'build', '--definition', 'bench.def', '--output', 'ours.sif']));
    else plain.push(run('apptainer', ['build', '--force', ...fakeroot, 'plain.sif', 'bench.def']));
  }
}
rmSync(dir, { recursive: true, force: true });
const result = {
  ours_s: Number(median(ours).toFixed(3)),
  plain_s: Number(median(plain).toFixed(3)),
  ratio: Number((median(ours) / median(plain)).toFixed(3)),
  rounds,
};
if (json) console.log(JSON.stringify(result));
else console.log(`build-image ${result.ours_s} s, plain apptainer ${result.plain_s} s, ratio ${result.ratio} (goal <= 1.05), ${rounds} rounds`);
