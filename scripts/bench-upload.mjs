// Upload benchmark: the project's stage (everything: connecting, lock, upload with its sha256, remote verification,
// rename) against OpenSSH `sftp` `put` of the same file to the same sshd, alternating, several rounds; prints the
// medians as JSON. With --rtt-ms both go through the project's latency proxy (scripts/latency-proxy.mjs: each
// direction delayed by half the round trip; --rate MBIT paces it as a link of that speed); --rtt-ms 0 is plain
// loopback. The TypeScript sources are bundled on the fly with esbuild (as scripts/gen-docs.mjs does), with ssh2 left
// external so its native crypto addon is used exactly as the installed package would use it.
//   node scripts/bench-upload.mjs [--size-mib 1024] [--rounds 3] [--rtt-ms 100] [--rate 400] [--channels auto|N]
//     [--segment-mib 64 (0: hash the whole file after)] [--json (only the JSON line on stdout)] [--verbose (our log)]
//     [--progress-ms 1000 (with --verbose: how often the progress line is printed)]
//     [--ours-only (skip `sftp`: for trying changes quickly)]
// The JSON has the medians of ours, of OpenSSH's and of their ratio, our phases (`phases_s`: connect, prepare, upload,
// verify, rename, release) and, with --rate, the upload's throughput as a fraction of the cap (`of_cap`).
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
const rttMs = opt('rtt-ms', 0);
const rateMbit = opt('rate', 0);
const channelsArg = args.includes('--channels') ? args[args.indexOf('--channels') + 1] : 'auto';
const channels = channelsArg === 'auto' ? 'auto' : Number(channelsArg);
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
let proxy;
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
  // Its own process: `sftp` runs under spawnSync, which blocks this one, and the proxy must not share our CPU time.
  let via = port;
  if (rttMs > 0 || rateMbit > 0) {
    proxy = spawn(process.execPath, [path.join(path.dirname(new URL(import.meta.url).pathname), 'latency-proxy.mjs'), String(port), String(rttMs), String(rateMbit)], { stdio: ['ignore', 'pipe', 'inherit'] });
    via = await new Promise((resolve, reject) => {
      proxy.stdout.once('data', (d) => resolve(Number(String(d).trim())));
      proxy.once('exit', (code) => reject(new Error(`the latency proxy exited with ${code}`)));
    });
  }
  const hostLine = `[127.0.0.1]:${via} ${readFileSync(path.join(work, 'host.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}`;
  writeFileSync(path.join(work, 'known_hosts'), hostLine + '\n');

  const file = path.join(work, 'image.sif');
  const fd = openSync(file, 'w');
  for (let i = 0; i < sizeMiB; i++) writeSync(fd, randomBytes(1024 * 1024));
  closeSync(fd);
  const bytes = sizeMiB * 1024 * 1024;

  let t0 = Date.now();
  const say = args.includes('--verbose') ? (m) => process.stderr.write(`  ${((Date.now() - t0) / 1000).toFixed(2)} ${m}\n`) : () => {};
  const quiet = { info: say, warning: say, error: say, group: (_n, fn) => fn(), setOutput() {}, setSecret() {}, summary: async () => {} };
  // Through the latency proxy the server stands for a distant one: ours reaches it by the IPv4-mapped form of the
  // same address, which the upload's "server on this machine: one channel" rule does not take for loopback.
  const ourHost = rttMs > 0 ? '::ffff:127.0.0.1' : '127.0.0.1';
  const ourHostLine = `[${ourHost}]:${via} ${hostLine.split(' ').slice(1).join(' ')}`;
  const target = { host: ourHost, port: via, username: USER, privateKey: readFileSync(path.join(work, 'client'), 'utf8'), knownHosts: ourHostLine };
  const ours = async () => {
    rmSync(path.join(remote, 'ours.sif'), { force: true });
    const t = Date.now();
    t0 = t;
    lastPhases = {};
    const r = await stageImage({
      onPhase: (name, seconds) => (lastPhases[name] = Number(((lastPhases[name] ?? 0) + seconds).toFixed(3))),
      target, image: file, stagingDir: remote, remoteName: 'ours.sif', reporter: quiet, progressIntervalMs: args.includes('--verbose') ? opt('progress-ms', 1000) : 0, channels,
      ...(chunkKiB ? { chunkSize: chunkKiB * 1024 } : {}), ...(requests ? { requests } : {}),
      ...(segmentMiB >= 0 ? { verifySegmentBytes: segmentMiB * 1024 * 1024 } : {}),
    });
    if (r.verification !== 'sha256' || r.bytesSent !== bytes) throw new Error(`unexpected stage result ${JSON.stringify(r)}`);
    lastUpload = r.uploadSeconds;
    lastChannels = r.channels;
    return (Date.now() - t) / 1000;
  };
  let lastUpload = 0;
  let lastChannels = 0;
  let lastPhases = {};
  const oursOnly = args.includes('--ours-only');
  const openssh = () => {
    if (oursOnly) return NaN;
    rmSync(path.join(remote, 'openssh.sif'), { force: true });
    const t = Date.now();
    const res = spawnSync('sftp', ['-q', '-b', '-', '-P', String(via), '-i', path.join(work, 'client'), '-o', `UserKnownHostsFile=${work}/known_hosts`, '-o', 'BatchMode=yes', `${USER}@127.0.0.1`], {
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
    results.push({ ours_s: o, ours_upload_s: lastUpload, openssh_s: b, ratio: o / b, channels: lastChannels, phases_s: lastPhases });
    const phases = Object.entries(lastPhases).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ');
    process.stderr.write(`round ${round + 1}: ours ${o.toFixed(2)} s over ${lastChannels} channel(s) (${phases}), openssh sftp ${b.toFixed(2)} s, ratio ${(o / b).toFixed(2)}\n`);
  }
  const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  console.log(
    JSON.stringify({
      ours_s: median(results.map((r) => r.ours_s)),
      ours_upload_s: median(results.map((r) => r.ours_upload_s)),
      openssh_s: median(results.map((r) => r.openssh_s)),
      ratio: Number(median(results.map((r) => r.ratio)).toFixed(3)),
      rtt_ms: rttMs,
      rate_mbit: rateMbit || undefined,
      bytes,
      channels: median(results.map((r) => r.channels)),
      phases_s: Object.fromEntries(Object.keys(results[0].phases_s).map((k) => [k, median(results.map((r) => r.phases_s[k] ?? 0))])),
      of_cap: rateMbit ? Number(((bytes * 8) / 1e6 / median(results.map((r) => r.ours_upload_s)) / rateMbit).toFixed(3)) : undefined,
      native_crypto: nativeCrypto,
      rounds: results,
    }),
  );
} finally {
  proxy?.kill('SIGTERM');
  if (sshd) sshd.kill('SIGTERM');
  rmSync(moduleFile, { force: true });
  rmSync(work, { recursive: true, force: true });
}
