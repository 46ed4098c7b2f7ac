// An unchanged nightly against a full run of the same small image: `stage: all` (build, stage over SFTP, smoke test,
// promote) against a loopback OpenSSH server, run once to publish, then unchanged (skipped: only the build key is
// compared with the published image's labels) and once with `force: true` (the full run). Prints the seconds of each
// and the share of the published image the unchanged run read. The TypeScript sources are bundled on the fly with
// esbuild (as scripts/bench-upload.mjs does), ssh2 left external.
//   npm run bench:noop [-- --json] [-- --rounds 3] [-- --size-mib 64]
import { build } from 'esbuild';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, copyFileSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const json = args.includes('--json');
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const rounds = opt('rounds', 3);
const sizeMiB = opt('size-mib', 64);
const USER = 'bisftp';

const bundled = await build({
  stdin: {
    contents: "export { loadConfig } from './src/config/config.ts'; export { runPipeline } from './src/pipeline.ts';",
    resolveDir: process.cwd(),
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  write: false,
  external: ['ssh2'],
  // Dynamic imports stay in one file.
  splitting: false,
});
const work = mkdtempSync(path.join(os.tmpdir(), 'bi-bench-noop-'));
chmodSync(work, 0o755);
// A data: URL cannot resolve bare imports, so the bundle is written next to node_modules.
const moduleFile = path.join(process.cwd(), `.bench-noop-${process.pid}.mjs`);
writeFileSync(moduleFile, bundled.outputFiles[0].text);
let sshd;
try {
  const { loadConfig, runPipeline } = await import(moduleFile);

  // The cluster: OpenSSH sshd on loopback, logging in an ordinary account (created if missing).
  if (spawnSync('id', ['-u', USER]).status !== 0) execFileSync('useradd', ['-M', '-d', '/tmp', '-s', '/bin/sh', '-p', '*', USER]);
  const uid = Number(execFileSync('id', ['-u', USER], { encoding: 'utf8' }));
  const gid = Number(execFileSync('id', ['-g', USER], { encoding: 'utf8' }));
  mkdirSync('/run/sshd', { recursive: true });
  for (const k of ['host', 'client']) execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', path.join(work, k)]);
  writeFileSync(path.join(work, 'authorized_keys'), readFileSync(path.join(work, 'client.pub')));
  const port = await new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
  });
  const config = path.join(work, 'sshd_config');
  writeFileSync(
    config,
    [`ListenAddress 127.0.0.1`, `Port ${port}`, `HostKey ${work}/host`, `AuthorizedKeysFile ${work}/authorized_keys`, `PidFile ${work}/sshd.pid`,
      'StrictModes no', 'UsePAM no', `AllowUsers ${USER}`, 'Subsystem sftp internal-sftp', ''].join('\n'),
  );
  sshd = spawn('/usr/sbin/sshd', ['-D', '-f', config, '-E', path.join(work, 'sshd.log')], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 500));
  const remote = path.join(work, 'remote');
  mkdirSync(remote);
  chownSync(remote, uid, gid);
  const hostLine = `[127.0.0.1]:${port} ${readFileSync(path.join(work, 'host.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}`;

  // The image: a scratch definition with a shell and an incompressible payload, so the image is not trivially small.
  copyFileSync('/bin/busybox', path.join(work, 'busybox'));
  const fd = openSync(path.join(work, 'payload.bin'), 'w');
  for (let i = 0; i < sizeMiB; i++) writeSync(fd, randomBytes(1024 * 1024));
  closeSync(fd);
  writeFileSync(
    path.join(work, 'nightly.def'),
    `Bootstrap: scratch\n%files\n    ${work}/busybox /bin/busybox\n    ${work}/busybox /bin/sh\n    ${work}/payload.bin /opt/payload.bin\n%post\n    /bin/busybox --install -s /bin\n`,
  );

  const inputs = {
    stage: 'all',
    name: 'nightly',
    definition: path.join(work, 'nightly.def'),
    output: path.join(work, 'nightly.sif'),
    'sftp-host': '127.0.0.1',
    'sftp-port': String(port),
    'sftp-username': USER,
    'sftp-private-key': readFileSync(path.join(work, 'client'), 'utf8'),
    'sftp-known-hosts': hostLine,
    'remote-dir': remote,
    preset: 'none',
    'smoke-command': 'true',
    gpus: '0',
    baseline: 'none',
  };
  const once = async (extra) => {
    const lines = [];
    const outputs = {};
    const reporter = {
      info: (m) => lines.push(m),
      warning: (m) => lines.push(`warning: ${m}`),
      error: (m) => lines.push(`error: ${m}`),
      group: (_n, fn) => fn(),
      setOutput: (k, v) => (outputs[k] = v),
      setSecret() {},
      summary: async () => {},
    };
    const given = { ...inputs, ...extra };
    const t = process.hrtime.bigint();
    await runPipeline(loadConfig((name) => given[name], { cwd: work }), reporter);
    return { seconds: Number(process.hrtime.bigint() - t) / 1e9, outputs, lines };
  };
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  const first = await once({});
  if (first.outputs.skipped !== 'false' || !first.outputs['remote-path']) throw new Error(`the first run did not publish:\n${first.lines.join('\n')}`);
  const noop = [];
  const full = [];
  let fraction = 0;
  for (let round = 0; round < rounds; round++) {
    const n = await once({});
    if (n.outputs.skipped !== 'true') throw new Error(`the unchanged run was not skipped:\n${n.lines.join('\n')}`);
    const m = n.lines.map((l) => /^read (\d+) of (\d+) bytes of /.exec(l)).find(Boolean);
    fraction = Math.max(fraction, Number(m[1]) / Number(m[2]));
    noop.push(n.seconds);
    const f = await once({ force: 'true' });
    if (f.outputs.skipped !== 'false' || !f.outputs['remote-path']) throw new Error(`the forced run did not publish:\n${f.lines.join('\n')}`);
    full.push(f.seconds);
    process.stderr.write(`round ${round + 1}: unchanged ${n.seconds.toFixed(2)} s (read ${m[1]} of ${m[2]} bytes), full ${f.seconds.toFixed(2)} s\n`);
  }
  const result = {
    noop_s: Number(median(noop).toFixed(3)),
    full_s: Number(median(full).toFixed(3)),
    read_fraction: Number(fraction.toPrecision(3)),
    image_bytes: Number(readFileSync(path.join(remote, 'nightly.sif')).length),
    rounds,
  };
  if (json) console.log(JSON.stringify(result));
  else console.log(`unchanged nightly ${result.noop_s} s (goal <= 5), full run ${result.full_s} s; read ${(result.read_fraction * 100).toFixed(3)} % of the ${(result.image_bytes / 1048576).toFixed(1)} MiB published image (goal <= 0.1 %)`);
} finally {
  if (sshd) sshd.kill('SIGTERM');
  rmSync(moduleFile, { force: true });
  rmSync(work, { recursive: true, force: true });
}
