// SIF → .sqsh by build-image's conversion (src/image/sqsh.ts) against `enroot import` of the same image from a
// loopback registry, alternating, each from a cold start (enroot's layer cache emptied before each import), so
// both see the same machine state. The image: busybox plus 64 MiB of incompressible data in a second layer, pushed
// as Docker v2 schema 2 (enroot 4.1.2 cannot read OCI manifests); the SIF is apptainer's build of that image.
// Prints medians and their ratio. Usage: npm run bench:sqsh [-- --json] [-- --rounds N]
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { build } from 'esbuild';

const json = process.argv.includes('--json');
const roundsArg = process.argv.indexOf('--rounds');
const rounds = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : 3;
const dir = mkdtempSync(path.join(os.tmpdir(), 'bi-bench-sqsh-'));
const run = (cmd, args, options = {}) => execFileSync(cmd, args, { cwd: dir, stdio: 'pipe', ...options });

// The converter as the action runs it, bundled from the source tree (dist/ is rebuilt only at release).
const converter = path.join(dir, 'sqsh.mjs');
await build({ entryPoints: ['src/image/sqsh.ts'], bundle: true, platform: 'node', format: 'esm', outfile: converter, logLevel: 'error' });
const { convertSifToSqsh } = await import(converter);

const port = await new Promise((resolve) => {
  const s = net.createServer().listen(0, '127.0.0.1', () => {
    const { port: p } = s.address();
    s.close(() => resolve(p));
  });
});
writeFileSync(path.join(dir, 'registry.yml'), `version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/registry\nhttp:\n  addr: 127.0.0.1:${port}\n`);
const registry = spawn('docker-registry', ['serve', path.join(dir, 'registry.yml')], { stdio: 'ignore' });
const host = `127.0.0.1:${port}`;
try {
  for (let i = 0; i < 50 && spawnSync('curl', ['-sf', `http://${host}/v2/`]).status !== 0; i++) await new Promise((r) => setTimeout(r, 100));

  // busybox, then the data layer.
  run('umoci', ['init', '--layout', 'layout']);
  run('umoci', ['new', '--image', 'layout:1']);
  run('umoci', ['unpack', '--rootless', '--image', 'layout:1', 'bundle']);
  mkdirSync(path.join(dir, 'bundle/rootfs/bin'), { recursive: true });
  copyFileSync('/bin/busybox', path.join(dir, 'bundle/rootfs/bin/busybox'));
  for (const applet of ['sh', 'env', 'cat', 'ls']) symlinkSync('busybox', path.join(dir, 'bundle/rootfs/bin', applet));
  run('umoci', ['repack', '--image', 'layout:1', 'bundle']);
  mkdirSync(path.join(dir, 'bundle/rootfs/opt/data'), { recursive: true });
  for (let i = 0; i < 64; i++) writeFileSync(path.join(dir, `bundle/rootfs/opt/data/f${i}`), randomBytes(1 << 20));
  run('umoci', ['repack', '--image', 'layout:1', 'bundle']);
  run('umoci', ['config', '--image', 'layout:1', '--config.cmd', '/bin/sh', '--config.env', 'BENCH=1']);
  run('skopeo', ['copy', '--format', 'v2s2', '--dest-tls-verify=false', 'oci:layout:1', `docker://${host}/bench/data:1`]);
  run('apptainer', ['build', '--force', 'bench.sif', `docker://${host}/bench/data:1`], { env: { ...process.env, APPTAINER_NOHTTPS: '1' } });

  const enrootDir = path.join(dir, 'enroot');
  const enrootEnv = {
    ...process.env,
    ENROOT_ALLOW_HTTP: 'yes',
    ENROOT_RUNTIME_PATH: `${enrootDir}/runtime`,
    ENROOT_DATA_PATH: `${enrootDir}/data`,
    ENROOT_CACHE_PATH: `${enrootDir}/cache`,
    ENROOT_TEMP_PATH: `${enrootDir}/tmp`,
    ENROOT_CONFIG_PATH: `${enrootDir}/config`,
  };
  const time = async (fn) => {
    const start = process.hrtime.bigint();
    await fn();
    return Number(process.hrtime.bigint() - start) / 1e9;
  };
  const ours = [];
  const enroot = [];
  for (let i = 0; i < rounds; i++) {
    for (const which of i % 2 === 0 ? ['ours', 'enroot'] : ['enroot', 'ours']) {
      rmSync(path.join(dir, `${which}.sqsh`), { force: true });
      if (which === 'ours') {
        ours.push(await time(() => convertSifToSqsh({ sif: path.join(dir, 'bench.sif'), output: path.join(dir, 'ours.sqsh'), tmpDir: dir })));
      } else {
        // A cold import: enroot's layer cache would otherwise spare it the pull and the unpack.
        rmSync(enrootDir, { recursive: true, force: true });
        for (const d of ['runtime', 'data', 'cache', 'tmp', 'config']) mkdirSync(path.join(enrootDir, d), { recursive: true });
        enroot.push(await time(async () => run('enroot', ['import', '-o', path.join(dir, 'enroot.sqsh'), `docker://${host}#bench/data:1`], { env: enrootEnv })));
      }
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const result = { ours_s: Number(median(ours).toFixed(3)), enroot_import_s: Number(median(enroot).toFixed(3)) };
  result.ratio = Number((result.ours_s / result.enroot_import_s).toFixed(3));
  if (json) console.log(JSON.stringify(result));
  else console.log(`SIF → .sqsh (build-image): ${result.ours_s} s; enroot import: ${result.enroot_import_s} s; ratio ${result.ratio} (median of ${rounds})`);
} finally {
  registry.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}
