// Upload benchmark: the project's stage (sha256 in the same pass, remote sha256 verification, rename) against
// OpenSSH `sftp` `put` of the same file to the same loopback sshd, alternating, several rounds; prints the median
// ratio as JSON. The TypeScript sources are bundled on the fly with esbuild (as scripts/gen-docs.mjs does), with
// ssh2 left external so its native crypto addon is used exactly as the installed package would use it.
//   node scripts/bench-upload.mjs [--size-mib 1024] [--rounds 3] [--segment-mib 64 (0: hash the whole file after)]
import { build } from 'esbuild';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? Number(args[i + 1]) : def;
};
const sizeMiB = opt('size-mib', 1024);
const rounds = opt('rounds', 3);
const chunkKiB = opt('chunk-kib', 0);
const requests = opt('requests', 0);
const segmentMiB = opt('segment-mib', -1);
const USER = 'bisftp';

const bundled = await build({
  stdin: { contents: "export { stageImage } from './src/publish/stage.ts';", resolveDir: process.cwd(), loader: 'ts' },
  bundle: true,
  format: 'esm',
  platform: 'node',
  write: false,
  external: ['ssh2'],
});
// A data: URL cannot resolve bare imports, so the bundle is written next to node_modules.
const work = mkdtempSync(path.join(os.tmpdir(), 'bi-bench-upload-'));
chmodSync(work, 0o755);
const moduleFile = path.join(process.cwd(), `.bench-upload-${process.pid}.mjs`);
writeFileSync(moduleFile, bundled.outputFiles[0].text);
let sshd;
try {
  const { stageImage } = await import(moduleFile);
  const require = createRequire(import.meta.url);
  let nativeCrypto = false;
  try {
    require('ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
    nativeCrypto = true;
  } catch {
    nativeCrypto = false;
  }

  // The server: OpenSSH sshd on loopback, logging in an ordinary account (created if missing).
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
  writeFileSync(path.join(work, 'known_hosts'), hostLine + '\n');

  const file = path.join(work, 'image.sif');
  const fd = openSync(file, 'w');
  for (let i = 0; i < sizeMiB; i++) writeSync(fd, randomBytes(1024 * 1024));
  closeSync(fd);
  const bytes = sizeMiB * 1024 * 1024;

  const quiet = { info() {}, warning() {}, error() {}, group: (_n, fn) => fn(), setOutput() {}, setSecret() {}, summary: async () => {} };
  const target = { host: '127.0.0.1', port, username: USER, privateKey: readFileSync(path.join(work, 'client'), 'utf8'), knownHosts: hostLine };
  const ours = async () => {
    rmSync(path.join(remote, 'ours.sif'), { force: true });
    const t = Date.now();
    const r = await stageImage({
      target, image: file, stagingDir: remote, remoteName: 'ours.sif', reporter: quiet, progressIntervalMs: 0,
      ...(chunkKiB ? { chunkSize: chunkKiB * 1024 } : {}), ...(requests ? { requests } : {}),
      ...(segmentMiB >= 0 ? { verifySegmentBytes: segmentMiB * 1024 * 1024 } : {}),
    });
    if (r.verification !== 'sha256' || r.bytesSent !== bytes) throw new Error(`unexpected stage result ${JSON.stringify(r)}`);
    lastUpload = r.uploadSeconds;
    return (Date.now() - t) / 1000;
  };
  let lastUpload = 0;
  const openssh = () => {
    rmSync(path.join(remote, 'openssh.sif'), { force: true });
    const t = Date.now();
    const res = spawnSync('sftp', ['-q', '-b', '-', '-P', String(port), '-i', path.join(work, 'client'), '-o', `UserKnownHostsFile=${work}/known_hosts`, '-o', 'BatchMode=yes', `${USER}@127.0.0.1`], {
      input: `put ${file} ${remote}/openssh.sif\n`,
      encoding: 'utf8',
    });
    if (res.status !== 0) throw new Error(`sftp failed: ${res.stderr}`);
    return (Date.now() - t) / 1000;
  };
  const results = [];
  for (let round = 0; round < rounds; round++) {
    // Alternate which goes first, so neither always gets the warmer page cache.
    const [a, b] = round % 2 === 0 ? [await ours(), openssh()] : [null, openssh()];
    const o = a ?? (await ours());
    results.push({ ours_s: o, ours_upload_s: lastUpload, openssh_s: b, ratio: o / b });
    process.stderr.write(`round ${round + 1}: ours ${o.toFixed(2)} s (upload ${lastUpload.toFixed(2)} s, the rest is connecting, remote hashing and rename), openssh sftp ${b.toFixed(2)} s, ratio ${(o / b).toFixed(2)}\n`);
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  console.log(
    JSON.stringify({
      ours_s: median(results.map((r) => r.ours_s)),
      ours_upload_s: median(results.map((r) => r.ours_upload_s)),
      openssh_s: median(results.map((r) => r.openssh_s)),
      ratio: Number(median(results.map((r) => r.ratio)).toFixed(3)),
      bytes,
      native_crypto: nativeCrypto,
      rounds: results,
    }),
  );
} finally {
  if (sshd) sshd.kill('SIGTERM');
  rmSync(moduleFile, { force: true });
  rmSync(work, { recursive: true, force: true });
}
