// The whole pipeline on embedded local services, as `npm run demo` shows it after the two builds, run as the
// nightly runs it. A loopback OCI registry stands for NGC: the provisioned PyTorch CPU image is pushed to it as an
// ORAS artifact under a monthly tag (`24.10-cpu`), and `source-tag-pattern: {yy}.{mm}-cpu` follows it.
// `build-image all` picks the newest tag, builds `pytorch-{tag}.sif` and its enroot image `pytorch-{tag}.sqsh`,
// stages both over SFTP to a real OpenSSH sshd on loopback whose account is chrooted to a tree that looks like the
// cluster's (`/lustre/share/img`), smoke-tests the `.sqsh` with the PyTorch payload through
// `srun --container-image` on a local Slurm with pyxis (no GPU here), promotes both with their aliases and opens the
// docs pull request on a local GitHub API server whose every exchange is checked against GitHub's OpenAPI
// description. A second run,
// with nothing changed, finds the published image's build key equal to its own and skips everything in seconds.
// Then a new month's tag (`24.11-cpu`, a different image) is pushed, and a third run picks it up: it builds,
// benchmarks the new image against the one it published, moves the alias, and updates the docs pull request in
// place. The servers are the ones the tests use, bundled on the fly with esbuild.
//   node scripts/demo-pipeline.mjs
import { build } from 'esbuild';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const SOURCE = '/var/cache/build-image/torch-cpu.sif';
const DOCS_REPO = 'SJTU-HPC/docs.hpc.sjtu.edu.cn';
const DOCS_FILE = 'docs/container/preset_images.rst';
const TOKEN = 'ghp_demoDEMOdemo0123456789abcdefABCDEFGHIJ';

if (!existsSync(SOURCE)) {
  console.error(`demo: the PyTorch CPU image ${SOURCE} is missing; run scripts/provision.sh as root first`);
  process.exit(1);
}

const bundled = await build({
  stdin: {
    contents: [
      "export { startSshd } from './test/helpers/sshd.ts';",
      "export { startGitHubServer } from './test/helpers/github-server.ts';",
      "export { startRegistry } from './test/helpers/registry.ts';",
      "export { startSlurm } from './test/helpers/slurm.ts';",
    ].join(' '),
    resolveDir: root,
    loader: 'ts',
  },
  bundle: true,
  format: 'esm',
  platform: 'node',
  packages: 'external',
  write: false,
});
// A data: URL cannot resolve bare imports, so the bundle is written next to node_modules.
const moduleFile = path.join(root, `.demo-pipeline-${process.pid}.mjs`);
writeFileSync(moduleFile, bundled.outputFiles[0].text);
const work = mkdtempSync(path.join(os.tmpdir(), 'build-image-demo-pipeline-'));
chmodSync(work, 0o755);
let sshd;
let github;
let registry;
let slurm;
try {
  const { startSshd, startGitHubServer, startRegistry, startSlurm } = await import(moduleFile);
  slurm = await startSlurm({ pyxis: true });
  console.log(`== Slurm with pyxis: partition dgx2 on ${slurm.nodeName}`);
  sshd = await startSshd({ chroot: true });
  github = await startGitHubServer();
  registry = await startRegistry();
  const repository = `${registry.host}/demo/pytorch`;
  const push = (file, tag) => {
    execFileSync('apptainer', ['push', '--no-https', file, `oras://${repository}:${tag}`], { stdio: 'pipe' });
    console.log(`== pushed ${path.basename(file)} to oras://${repository}:${tag}`);
  };
  push(SOURCE, '24.10-cpu');
  const docs = readFileSync(path.join(root, 'test/fixtures/docs/preset-images.rst'), 'utf8');
  github.createRepo(DOCS_REPO, { files: { [DOCS_FILE]: docs } });
  github.addToken(TOKEN, { login: 'image-bot', repos: { [DOCS_REPO]: 'write' } });
  const remoteDir = '/lustre/share/img';
  const onHost = path.join(sshd.root, remoteDir);
  console.log(`== sshd on ${sshd.host}:${sshd.port} (account ${sshd.user}, chrooted to ${sshd.root}), the "cluster" directory ${remoteDir}`);
  console.log(`== GitHub API on ${github.apiUrl}, ${DOCS_REPO} holding ${DOCS_FILE}`);

  const keyFile = path.join(work, 'sftp-key');
  writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
  const tokenFile = path.join(work, 'github-token');
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  // The gate is loose on purpose: on a small shared machine (or beside the test suite) a CPU GEMM can run at half
  // speed one minute and full speed the next; a real cluster job would use the default 10% on GPU figures.
  const flags = [
    '--name', 'pytorch', '--source', `oras://${repository}`, '--source-tag-pattern', '{yy}.{mm}-cpu', '--registry-insecure',
    '--remote-name', 'pytorch-{tag}.sif', '--alias', 'pytorch-latest.sif',
    '--sftp-host', sshd.host, '--sftp-port', String(sshd.port), '--sftp-username', sshd.user,
    '--sftp-private-key-file', keyFile, '--sftp-known-hosts', sshd.knownHostsLine,
    '--remote-dir', remoteDir, '--staging-dir', `${remoteDir}/.staging`,
    '--formats', 'sif,sqsh', '--launcher', 'pyxis', '--gpus', '0', '--cpus-per-task', '2',
    '--preset', 'pytorch', '--max-regression', '90%',
    '--github-token-file', tokenFile, '--github-api-url', github.apiUrl,
    '--docs-repo', DOCS_REPO, '--docs-file', DOCS_FILE, '--software', 'PyTorch',
  ];
  // Next month's image: the same PyTorch with a release note added as a SIF data object, so a new digest.
  const nextMonth = () => {
    const file = path.join(work, 'pytorch-24.11-cpu.sif');
    copyFileSync(SOURCE, file);
    writeFileSync(path.join(work, 'release-note.txt'), 'PyTorch CPU image, November release\n');
    execFileSync('apptainer', ['sif', 'add', '--datatype', '7', '--filename', 'release-note.txt', file, path.join(work, 'release-note.txt')], { stdio: 'pipe' });
    push(file, '24.11-cpu');
    rmSync(file);
  };
  // A login node would see the published image on the shared file system and take it as the baseline by itself;
  // this machine sees the chrooted tree under another name, so the third run names it.
  const runs = [
    { title: 'run 1 of 3: the first publication', extra: [] },
    { title: 'run 2 of 3: nothing changed, so nothing is done', extra: [] },
    { title: 'run 3 of 3: a new tag upstream; the published image is now the baseline', before: nextMonth, extra: ['--baseline', path.join(onHost, 'pytorch-latest.sif')] },
  ];
  for (const { title, before, extra } of runs) {
    before?.();
    console.log(`\n== build-image all (${title})`);
    const started = Date.now();
    const code = await new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(root, 'dist/cli.js'), 'all', ...flags, ...extra], { cwd: work, stdio: 'inherit', env: { ...process.env, ...slurm.env } });
      child.once('exit', (c) => resolve(c));
    });
    if (code !== 0) throw new Error(`build-image all exited with ${code}`);
    console.log(`== (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  console.log(`\n== on the "cluster": ${remoteDir} (${onHost} here)`);
  for (const name of readdirSync(onHost).sort()) {
    const file = path.join(onHost, name);
    const st = statSync(file);
    let link = '';
    try {
      link = ` -> ${readlinkSync(file)}`;
    } catch {
      // not a link
    }
    console.log(`   ${name}${link}${st.isFile() ? `  (${(st.size / 2 ** 20).toFixed(1)} MiB)` : ''}`);
  }
  const [pull, ...others] = github.pulls(DOCS_REPO);
  console.log(`\n== docs pull requests on ${DOCS_REPO}: ${1 + others.length}`);
  if (pull) {
    console.log(`   #${pull.number} ${pull.state}: ${pull.title} (${pull.head} -> ${pull.base})`);
    const before = github.file(DOCS_REPO, pull.base, DOCS_FILE).split('\n');
    const after = github.file(DOCS_REPO, pull.head, DOCS_FILE).split('\n');
    console.log(`   ${DOCS_FILE}, the lines that changed:`);
    before.forEach((line, i) => line !== after[i] && console.log(`   - ${line}`));
    after.forEach((line, i) => line !== before[i] && console.log(`   + ${line}`));
  }
  github.assertNoViolations();
  console.log('   every request and response matched GitHub\'s OpenAPI description');
} finally {
  await sshd?.stop();
  await github?.stop();
  await registry?.stop();
  await slurm?.stop();
  rmSync(moduleFile, { force: true });
  rmSync(work, { recursive: true, force: true });
}
