// The whole pipeline on embedded local services, as `npm run demo` shows it after the two builds:
// `build-image all` builds from the provisioned PyTorch CPU image, stages it over SFTP to a real OpenSSH sshd on
// loopback, smoke-tests it with the PyTorch payload (direct launcher, no GPU here), promotes it with an alias and
// opens the docs pull request on a local GitHub API server whose every exchange is checked against GitHub's
// OpenAPI description. A second run, with nothing changed, finds the published image's build key equal to its own
// and skips everything in seconds. A third run stands for a new upstream (a changed `key-inputs` line, as a nightly
// wheel's new version would be): it builds, benchmarks the new image against the one it published, and updates
// the docs pull request in place. The servers are the ones the tests use, bundled on the fly with esbuild.
//   node scripts/demo-pipeline.mjs
import { build } from 'esbuild';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
    contents: "export { startSshd } from './test/helpers/sshd.ts'; export { startGitHubServer } from './test/helpers/github-server.ts';",
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
try {
  const { startSshd, startGitHubServer } = await import(moduleFile);
  sshd = await startSshd();
  github = await startGitHubServer();
  const docs = readFileSync(path.join(root, 'test/fixtures/docs/preset-images.rst'), 'utf8');
  github.createRepo(DOCS_REPO, { files: { [DOCS_FILE]: docs } });
  github.addToken(TOKEN, { login: 'image-bot', repos: { [DOCS_REPO]: 'write' } });
  const remoteDir = path.join(sshd.root, 'lustre/share/img');
  console.log(`== sshd on ${sshd.host}:${sshd.port} (account ${sshd.user}), the "cluster" directory ${remoteDir}`);
  console.log(`== GitHub API on ${github.apiUrl}, ${DOCS_REPO} holding ${DOCS_FILE}`);

  const keyFile = path.join(work, 'sftp-key');
  writeFileSync(keyFile, sshd.privateKey, { mode: 0o600 });
  const tokenFile = path.join(work, 'github-token');
  writeFileSync(tokenFile, TOKEN, { mode: 0o600 });
  // The gate is loose on purpose: on a small shared machine (or beside the test suite) a CPU GEMM can run at half
  // speed one minute and full speed the next; a real cluster job would use the default 10% on GPU figures.
  const flags = [
    '--name', 'pytorch', '--source', SOURCE, '--remote-name', 'pytorch-2.6-cpu.sif', '--alias', 'pytorch-latest.sif',
    '--sftp-host', sshd.host, '--sftp-port', String(sshd.port), '--sftp-username', sshd.user,
    '--sftp-private-key-file', keyFile, '--sftp-known-hosts', sshd.knownHostsLine,
    '--remote-dir', remoteDir, '--staging-dir', path.join(sshd.root, 'lustre/share/img/.staging'),
    '--launcher', 'direct', '--gpus', '0', '--preset', 'pytorch', '--max-regression', '90%',
    '--github-token-file', tokenFile, '--github-api-url', github.apiUrl,
    '--docs-repo', DOCS_REPO, '--docs-file', DOCS_FILE, '--software', 'PyTorch',
  ];
  const runs = [
    { title: 'run 1 of 3: the first publication', extra: ['--key-inputs', 'upstream 2.6.0'] },
    { title: 'run 2 of 3: nothing changed, so nothing is done', extra: ['--key-inputs', 'upstream 2.6.0'] },
    { title: 'run 3 of 3: a new upstream; the published image is now the baseline', extra: ['--key-inputs', 'upstream 2.6.1'] },
  ];
  for (const { title, extra } of runs) {
    console.log(`\n== build-image all (${title})`);
    const started = Date.now();
    const code = await new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(root, 'dist/cli.js'), 'all', ...flags, ...extra], { cwd: work, stdio: 'inherit' });
      child.once('exit', (c) => resolve(c));
    });
    if (code !== 0) throw new Error(`build-image all exited with ${code}`);
    console.log(`== (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  }

  console.log(`\n== on the "cluster": ${remoteDir}`);
  for (const name of readdirSync(remoteDir).sort()) {
    const file = path.join(remoteDir, name);
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
  rmSync(moduleFile, { force: true });
  rmSync(work, { recursive: true, force: true });
}
