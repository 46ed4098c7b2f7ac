import { describe, expect, test } from '@jest/globals';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { formatFinding, lintDefinition, type Finding, type LintOptions } from '../../src/build/lint.js';

const fixtures = fileURLToPath(new URL('../fixtures/definitions/', import.meta.url));
const read = (name: string): string => readFileSync(fixtures + name, 'utf8');

/** A docker stage header followed by the given body lines; the body starts on line 4. */
const docker = (...body: string[]): string => ['Bootstrap: docker', 'From: ubuntu:22.04', '', ...body].join('\n');
const lint = (text: string, options?: LintOptions): Finding[] => lintDefinition(text, options);
const rules = (text: string, options?: LintOptions): string[] => lint(text, options).map((f) => f.rule);
const findingsOf = (rule: string, text: string, options?: LintOptions): Finding[] => lint(text, options).filter((f) => f.rule === rule);

describe("the centre's %enviroment example", () => {
  test('is an error at line 7 that suggests %environment', () => {
    const findings = lint(read('u2cb-enviroment.def'));
    expect(findings).toHaveLength(1);
    expect(findings[0]).toMatchObject({ line: 7, severity: 'error', rule: 'unknown-section' });
    expect(findings[0].message).toContain('%environment');
    expect(findings[0].message).toBe('unknown section %enviroment; did you mean %environment?');
  });
});

describe('valid definition files', () => {
  const valid = readdirSync(fixtures + 'valid').filter((f) => f.endsWith('.def'));

  test('cover every bootstrap agent, multi-stage, apps, build args and CRLF', () => {
    expect(valid.sort()).toEqual([
      'apps.def', 'arch.def', 'arguments.def', 'busybox.def', 'crlf.def', 'debootstrap.def', 'dnf.def',
      'docker-archive.def', 'docker-daemon.def', 'docker.def', 'library.def', 'localimage.def', 'multistage.def',
      'oci-archive.def', 'oci.def', 'oras.def', 'practices.def', 'scratch.def', 'shub.def', 'yum.def', 'zypper.def',
    ]);
  });

  test.each(valid)('%s has no errors and no warnings', (file) => {
    expect(lint(read(`valid/${file}`))).toEqual([]);
  });

  test('build args that override the defaults are fine', () => {
    expect(lint(read('valid/arguments.def'), { buildArgs: { UBUNTU: '24.04', PYTHON_VERSION: '3.12' } })).toEqual([]);
  });
});

describe('invalid definition files: one fixture per rule', () => {
  // file (named after its rule) -> the one finding it must give
  const cases: [string, number, 'error' | 'warning', LintOptions?][] = [
    ['byte-order-mark', 1, 'error'],
    ['empty-definition', 1, 'error'],
    ['header-syntax', 3, 'error'],
    ['unknown-header', 1, 'error'],
    ['missing-bootstrap', 1, 'error'],
    ['unknown-bootstrap', 1, 'error'],
    ['missing-from', 1, 'error'],
    ['missing-header', 1, 'error'],
    ['invalid-from', 2, 'error'],
    ['unknown-section', 7, 'error'],
    ['section-syntax', 6, 'error'],
    ['undefined-build-arg', 5, 'error'],
    ['unused-build-arg', 1, 'error', { buildArgs: { CUDA: '12.4' } }],
    ['unknown-stage', 12, 'error'],
    ['stage-order', 5, 'error'],
    ['duplicate-stage', 7, 'error'],
    ['files-args', 8, 'error'],
    ['duplicate-header', 3, 'warning'],
    ['duplicate-section', 7, 'warning'],
    ['root-home-install', 5, 'warning'],
    ['install-needs-yes', 6, 'warning'],
    ['labels-syntax', 5, 'warning'],
    ['arguments-syntax', 5, 'warning'],
    ['placeholder-after-hash', 8, 'warning'],
    ['files-extra-field', 5, 'warning'],
    ['heredoc-unterminated', 5, 'warning'],
    ['appfiles-destination', 5, 'error'],
    ['reserved-label', 5, 'error'],
    ['section-too-large', 4, 'error'],
    ['moving-target', 6, 'warning', { skipping: true }],
  ];

  test('there is a fixture for every case and a case for every fixture', () => {
    const files = readdirSync(fixtures + 'invalid').filter((f) => f.endsWith('.def')).map((f) => f.replace(/\.def$/, ''));
    expect(files.sort()).toEqual(cases.map(([rule]) => rule).sort());
  });

  // Rows as objects: jest-each would take a fourth parameter missing from a row for `done`.
  test.each(cases.map(([rule, line, severity, options]) => ({ rule, line, severity, options })))(
    '$rule.def gives that finding on line $line ($severity)', ({ rule, line, severity, options }) => {
    const findings = lint(read(`invalid/${rule}.def`), options);
    expect(findings.map((f) => ({ rule: f.rule, line: f.line, severity: f.severity }))).toEqual([{ rule, line, severity }]);
  });
});

describe('moving targets in %post', () => {
  const text = read('invalid/moving-target.def');
  test('warn once, naming the fetch and key-inputs, only while skipping is on and key-inputs is empty', () => {
    const [finding] = findingsOf('moving-target', text, { skipping: true });
    expect(finding.message).toMatch(/^%post fetches from the network \(pip install\), which the build key cannot see: .* Set key-inputs/);
    expect(findingsOf('moving-target', text, { skipping: true, keyInputs: true })).toEqual([]);
    expect(findingsOf('moving-target', text)).toEqual([]);
  });

  test.each(['curl -fsSL https://x/y.tar.gz | tar xz', 'wget https://x/y', 'python3 -m pip install numpy', '/opt/conda/bin/conda install -y numpy'])('`%s` is a fetch', (line) => {
    expect(findingsOf('moving-target', docker('%post', `    ${line}`), { skipping: true })).toHaveLength(1);
  });

  test('local commands are not', () => {
    expect(findingsOf('moving-target', docker('%post', '    echo pip install > /notes', '    tar xf /opt/x.tar'), { skipping: true })).toEqual([]);
  });
});

describe('headers', () => {
  test('keys are case-insensitive, and OtherURL<N> is accepted, as in apptainer', () => {
    expect(lint('BOOTSTRAP: docker\nFROM: ubuntu\n')).toEqual([]);
    expect(lint('Bootstrap: zypper\nMirrorURL: http://m/\nOtherURL0: http://a/\nOtherURL1: http://b/\n')).toEqual([]);
  });

  test('an unknown key names the key it resembles, and a misspelt Bootstrap is not also reported missing', () => {
    expect(lint('Bootsrap: docker\nFrom: ubuntu\n')).toEqual([
      { line: 1, column: 1, severity: 'error', rule: 'unknown-header', message: 'unknown header Bootsrap; did you mean Bootstrap?' },
    ]);
    expect(rules('Bootstrap: docker\nFrmo: ubuntu\n')).toEqual(['unknown-header']);
    expect(findingsOf('unknown-header', 'Bootstrap: docker\nFrom: x\nMaintainer: me\n')[0].message).toContain('known: Bootstrap, From');
  });

  test('a repeated key is a warning; different keys are not', () => {
    expect(rules('Bootstrap: docker\nFrom: a\nfrom: b\n')).toEqual(['duplicate-header']);
    expect(lint('Bootstrap: docker\nFrom: a\nStage: one\n')).toEqual([]);
  });
});

describe('bootstrap agents', () => {
  test('agents are case-sensitive in apptainer', () => {
    expect(findingsOf('unknown-bootstrap', 'Bootstrap: Docker\nFrom: ubuntu\n')[0].message).toBe('bootstrap agent Docker must be lowercase: Bootstrap: docker');
  });

  test('an unknown agent suggests the nearest one, or lists them all', () => {
    expect(findingsOf('unknown-bootstrap', 'Bootstrap: oci-archiv\nFrom: x\n')[0].message).toContain('did you mean oci-archive?');
    expect(findingsOf('unknown-bootstrap', 'Bootstrap: buildkit\nFrom: x\n')[0].message).toContain('apptainer knows docker,');
  });

  test('an empty Bootstrap: is missing too', () => {
    expect(rules('Bootstrap:\nFrom: ubuntu\n')).toEqual(['missing-bootstrap']);
  });

  test('text before the first Bootstrap: of a multi-stage file is called out', () => {
    const [f] = lint('From: ubuntu\n\nBootstrap: docker\nFrom: debian\n');
    expect(f).toMatchObject({ rule: 'missing-bootstrap', line: 1 });
    expect(f.message).toContain('before the first `Bootstrap:` line');
  });

  test('From is required by image agents, not by scratch, arch or busybox', () => {
    for (const agent of ['docker', 'oras', 'library', 'localimage', 'oci-archive']) {
      expect(rules(`Bootstrap: ${agent}\n`)).toEqual(['missing-from']);
    }
    expect(rules('Bootstrap: docker\nFrom:   \n')).toEqual(['missing-from']);
    expect(lint('Bootstrap: scratch\n')).toEqual([]);
    expect(lint('Bootstrap: arch\n')).toEqual([]);
  });

  test('system agents need their mirror headers', () => {
    expect(findingsOf('missing-header', 'Bootstrap: busybox\n').map((f) => f.message)).toEqual([
      'Bootstrap: busybox needs the header MirrorURL: (the URL of a busybox binary)',
    ]);
    expect(findingsOf('missing-header', 'Bootstrap: debootstrap\nMirrorURL: http://deb.debian.org/debian\n')[0].message).toContain('OSVersion');
    expect(findingsOf('missing-header', 'Bootstrap: yum\nMirrorURL: http://m/%{OSVERSION}/os\n')[0].message).toContain('OSVersion');
    expect(lint('Bootstrap: yum\nMirrorURL: http://m/9/os\n')).toEqual([]);
    expect(findingsOf('missing-header', 'Bootstrap: dnf\nMirrorURL:\n')[0].message).toContain('a value for MirrorURL:');
  });

  test('zypper may use the build host repositories, but a SLE build needs Product, User, Regcode and OSVersion', () => {
    expect(lint('Bootstrap: zypper\n')).toEqual([]);
    expect(rules('Bootstrap: zypper\nMirrorURL: http://m/%{OSVERSION}/oss\n')).toEqual(['missing-header']);
    const sle = 'Bootstrap: zypper\nProduct: SLES\nUser: me@example.org\nRegcode: abc\nOSVersion: 15.5\nMirrorURL: http://m/\n';
    expect(lint(sle)).toEqual([]);
    expect(findingsOf('missing-header', sle.replace('Regcode: abc\n', '')).map((f) => f.message)).toEqual([
      expect.stringContaining('Regcode'),
    ]);
    expect(findingsOf('missing-header', sle.replace('MirrorURL: http://m/\n', ''))[0].message).toContain('SLE after 12');
    expect(lint(sle.replace('MirrorURL: http://m/\n', '').replace('15.5', '12.5'))).toEqual([]);
  });

  test('docker From must be a plain image reference', () => {
    expect(findingsOf('invalid-from', 'Bootstrap: docker\nFrom: docker://ubuntu\n')[0].message).toContain('`From: ubuntu`');
    expect(rules('Bootstrap: docker\nFrom: Ubuntu:22.04\n')).toEqual(['invalid-from']);
    expect(rules('Bootstrap: docker\nFrom: ubuntu 22.04\n')).toEqual(['invalid-from']);
    for (const ok of [
      'ubuntu', 'ubuntu:22.04', 'nvcr.io/nvidia/pytorch:24.05-py3', 'localhost:5000/team/app_x:v1.0',
      `python@sha256:${'a'.repeat(64)}`, `ghcr.io/Org-Name/app:1-${'b'}@sha256:${'0'.repeat(64)}`.replace('Org-Name', 'org-name'),
      'Registry.Example.com/lab/tool:Latest',
    ]) {
      expect([ok, rules(`Bootstrap: docker\nFrom: ${ok}\n`)]).toEqual([ok, []]);
    }
  });

  test('header values are checked after {{ }} substitution', () => {
    const def = 'Bootstrap: {{ AGENT }}\nFrom: {{ BASE }}\n%arguments\n  AGENT=docker\n  BASE=ubuntu:22.04\n';
    expect(lint(def)).toEqual([]);
    expect(rules(def, { buildArgs: { BASE: 'Ubuntu' } })).toEqual(['invalid-from']);
    expect(rules(def, { buildArgs: { AGENT: 'dockr' } })).toEqual(['unknown-bootstrap']);
  });
});

describe('sections', () => {
  test('an unknown section without a near match says apptainer rejects it', () => {
    expect(lint(docker('%install', '  make'))).toEqual([
      { line: 4, column: 1, severity: 'error', rule: 'unknown-section', message: 'unknown section %install; apptainer rejects the file' },
    ]);
    expect(findingsOf('unknown-section', docker('%env', '  A=1'))[0].message).toContain('did you mean %environment?');
    expect(findingsOf('unknown-section', docker('%app-run foo'))[0].message).toContain('did you mean %apprun?');
  });

  test('every standard and app section is accepted, in any case for standard ones', () => {
    const all = ['%SETUP', '%Files', '%environment', '%post', '%runscript', '%startscript', '%test', '%labels', '%help', '%arguments', '%pre',
      '%appinstall a', '%appfiles a', '%appenv a', '%apphelp a', '%applabels a', '%apprun a', '%apptest a', '%appstart a'];
    expect(lint(docker(...all))).toEqual([]);
  });

  test('section lines apptainer cannot read are errors', () => {
    const message = (body: string[]): string => findingsOf('section-syntax', docker(...body))[0].message;
    expect(message(['%post', '  echo', '  %runscript'])).toContain('must start at the beginning of the line');
    expect(message(['%post\t-c /bin/bash'])).toContain('not a tab');
    expect(message(['%AppRun foo'])).toBe('apptainer only recognises app sections in lowercase: write %apprun');
    expect(message(['%apprun'])).toBe('%apprun needs an app name: %apprun NAME');
    expect(message(['%post -c'])).toContain('%post -c needs a shell');
    expect(lint(docker('%post -c /bin/bash', '%setup -e', '%runscript -c'))).toEqual([]);
  });

  test('a second entry point is a warning; repeated %post or %environment is fine', () => {
    expect(rules(docker('%runscript', '  a', '%apprun x', '  b', '%apprun x', '  c'))).toEqual(['duplicate-section']);
    expect(lint(docker('%post', '  a', '%environment', '  A=1', '%post', '  b', '%environment', '  B=2', '%apprun x', '%apprun y'))).toEqual([]);
  });

  test('repeated sections with different arguments are a warning, since only the last arguments apply', () => {
    expect(findingsOf('duplicate-section', docker('%post -c /bin/bash', '  a', '%post -c /bin/sh', '  b'))[0]).toMatchObject({ line: 6, severity: 'warning' });
    expect(lint(docker('%post -c /bin/bash', '  a', '%post', '  b'))).toEqual([]);
  });

  test('labels must be `key value`', () => {
    expect(findingsOf('labels-syntax', docker('%labels', '  Maintainer'))[0].message).toContain('empty value');
    expect(findingsOf('labels-syntax', docker('%labels', '  Maintainer\tme'))[0].message).toContain('not at a tab');
    expect(findingsOf('labels-syntax', docker('%labels', '  Author: me'))[0].message).toContain('keeps its `:`');
    expect(rules(docker('%applabels x', '  version=1'))).toEqual(['labels-syntax']);
    expect(lint(docker('%labels', '  # comment', '', '  Author Jane Doe <jane@example.org>', '  org.opencontainers.image.version 1.0'))).toEqual([]);
  });

  test('%appfiles destinations must be inside the app, where only bin, lib and scif exist', () => {
    const [f] = lint(docker('%appfiles fetch', '  ./fetch.cfg /scif/apps/fetch/fetch.cfg'));
    expect(f).toMatchObject({ line: 5, severity: 'error', rule: 'appfiles-destination' });
    expect(f.message).toContain('/scif/apps/fetch/scif/apps/fetch does not exist');
    expect(rules(docker('%appfiles fetch', '  /opt/data/fetch.cfg'))).toEqual(['appfiles-destination']);
    expect(lint(docker('%appfiles fetch', '  ./fetch.cfg', '  ./a b', '  /opt/tool /bin/tool', '  ./lib.so lib/', '  ./x scif/env/95-x.sh # env', '  # /a/b/c'))).toEqual([]);
  });

  test('%files lines with more than two paths are a warning; quoted paths count as one', () => {
    expect(rules(docker('%files', '  /a b /c'))).toEqual(['files-extra-field']);
    expect(lint(docker('%files', '  "/data/my file.csv" /opt/data.csv', '  /etc/hosts', '  # /a /b /c', '  {{ SRC }} /dst', '%arguments', '  SRC=x'))).toEqual([]);
  });
});

describe('multi-stage %files from', () => {
  const stages = (first: string, files: string): string =>
    `Bootstrap: docker\nFrom: golang\n${first}\n\nBootstrap: docker\nFrom: debian\nStage: final\n${files}\n  /a /b\n`;

  test('a stage that does not exist is an error that suggests the nearest name', () => {
    expect(findingsOf('unknown-stage', stages('Stage: build', '%files from buidl'))[0].message).toContain('did you mean build?');
    expect(findingsOf('unknown-stage', stages('', '%files from build'))[0].message).toContain('stages: final');
    expect(findingsOf('unknown-stage', 'Bootstrap: docker\nFrom: x\n%files from build\n')[0].message).toContain('Stage:');
  });

  test('copying from a later stage or from itself is an error', () => {
    expect(findingsOf('stage-order', stages('Stage: build', '%files from final'))[0].message).toContain('cannot copy from itself');
  });

  test('%files arguments are read as apptainer does', () => {
    expect(lint(stages('Stage: build', '%files from build # the compiler stage'))).toEqual([]);
    expect(lint(stages('Stage: build', '%files # from the host'))).toEqual([]);
    expect(findingsOf('files-args', stages('Stage: build', '%files frm build'))).toMatchObject([{ severity: 'warning', line: 8 }]);
    expect(findingsOf('files-args', stages('Stage: build', '%files from build final'))).toMatchObject([{ severity: 'error' }]);
  });

  test('unnamed stages and unique names are fine', () => {
    expect(lint(stages('Stage: build', '%files from build'))).toEqual([]);
    expect(lint('Bootstrap: docker\nFrom: a\n\nBootstrap: docker\nFrom: b\n')).toEqual([]);
  });
});

describe('build arguments', () => {
  const def = docker('%arguments', '  VERSION=1.0', '%post', '  echo {{ VERSION }} {{ EXTRA }}');

  test('a placeholder without default or build arg is an error at its position', () => {
    expect(lint(def)).toEqual([
      {
        line: 7, column: 22, severity: 'error', rule: 'undefined-build-arg',
        message: '{{ EXTRA }} has no value: add EXTRA=... to %arguments or pass --build-arg EXTRA=...',
      },
    ]);
    expect(lint(def, { buildArgs: { EXTRA: 'x' } })).toEqual([]);
    expect(lint(def, { buildArgs: { EXTRA: 'x', VERSION: '2.0' } })).toEqual([]);
  });

  test('defaults apply only to their own stage, as in apptainer', () => {
    const twoStages = 'Bootstrap: docker\nFrom: a\n%arguments\n  V=1\n\nBootstrap: docker\nFrom: b\n%post\n  echo {{ V }}\n';
    expect(findingsOf('undefined-build-arg', twoStages)[0].message).toContain("another stage's defaults do not apply here");
    expect(lint(twoStages, { buildArgs: { V: '2' } })).toEqual([]);
  });

  test('placeholders apptainer treats as commented need no value', () => {
    expect(lint(docker('%post', '  # {{ NOTHING }}', '  echo hi # {{ ALSO_NOTHING }}'))).toEqual([]);
  });

  test('`#{{ X }}` is still replaced by apptainer, so it needs a value even in a comment', () => {
    const [f] = lint(docker('%post', '  #{{ X }}'));
    expect(f).toMatchObject({ line: 5, column: 4, rule: 'undefined-build-arg' });
    expect(f.message).toContain('even in this comment');
  });

  test('a placeholder apptainer skips because of an earlier # is a warning', () => {
    expect(lint(docker('%arguments', '  A=1', '%post', '  echo ${#list[@]} {{ A }}'))).toEqual([
      { line: 7, column: 20, severity: 'warning', rule: 'placeholder-after-hash', message: 'apptainer leaves {{ A }} unreplaced: a `#` earlier on the line looks like a comment to it' },
    ]);
    expect(lint(docker('%arguments', '  A=1', '%post', '  echo {{ A }} # {{ A }}'))).toEqual([]);
  });

  test('a build arg the file never uses is an error, or a warning with --warn-unused-build-args', () => {
    const [f] = lint(def, { buildArgs: { EXTRA: 'x', TYPO: 'y' } });
    expect(f).toMatchObject({ line: 1, severity: 'error', rule: 'unused-build-arg' });
    expect(f.message).toContain('--warn-unused-build-args');
    expect(lint(def, { buildArgs: { EXTRA: 'x', TYPO: 'y' }, warnUnusedBuildArgs: true })).toMatchObject([{ severity: 'warning', rule: 'unused-build-arg' }]);
  });

  test('%arguments lines apptainer skips or cannot use are warnings', () => {
    expect(findingsOf('arguments-syntax', docker('%arguments', '  VERSION'))[0].message).toContain('skips `VERSION`');
    expect(findingsOf('arguments-syntax', docker('%arguments', '  =1'))[0].message).toContain('skips `=1`');
    expect(findingsOf('arguments-syntax', docker('%arguments', '  MY-VAR=1'))[0].message).toContain('`MY-VAR`');
    expect(lint(docker('%arguments', '  # comment', '', '  A_1 = x=y'))).toEqual([]);
  });
});

describe('build scripts that install into /root', () => {
  const post = (...lines: string[]): Finding[] => findingsOf('root-home-install', docker('%post', ...lines.map((l) => `    ${l}`)));

  test.each([
    ['pip --user', 'pip install --user numpy', 'drop --user'],
    ['python -m pip --user', 'python3 -m pip install --upgrade --user numpy', 'drop --user'],
    ['conda installer without -p', 'bash Miniconda3-latest-Linux-x86_64.sh -b', 'add -p /opt/conda'],
    ['conda installer run directly', './Miniforge3.sh -b -u', 'add -p /opt/conda'],
    ['conda init', 'conda init bash', '%environment'],
    ['cargo install', 'cargo install ripgrep', '--root'],
    ['rustup', 'curl https://sh.rustup.rs -sSf | sh -s -- -y', 'RUSTUP_HOME'],
    ['go install', 'go install golang.org/x/tools/gopls@latest', 'GOBIN'],
    ['uv installer', 'curl -LsSf https://astral.sh/uv/install.sh | sh', 'UV_INSTALL_DIR'],
    ['pipx', 'pipx install black', '--global'],
    ['julia packages', `julia -e 'using Pkg; Pkg.add("DataFrames")'`, 'JULIA_DEPOT_PATH'],
    ['huggingface downloads', 'huggingface-cli download bert-base-uncased', 'HF_HOME'],
    ['$HOME', 'git clone https://example.org/repo.git $HOME/repo', '/opt'],
    ['${HOME}', 'export PATH=${HOME}/.local/bin:$PATH', '/opt'],
    ['~', 'cd ~ && make install', '/opt'],
    ['/root', 'cd /root && ./configure && make install', '/opt'],
  ])('%s is a warning', (_, line, fix) => {
    const [f] = post(line);
    expect(f).toMatchObject({ line: 5, severity: 'warning' });
    expect(f.message).toContain('which users of the image cannot read');
    expect(f.message).toContain(fix);
  });

  test.each([
    ['pip without --user', 'pip install --no-cache-dir numpy'],
    ['conda installer with -p', 'bash Miniconda3-latest-Linux-x86_64.sh -b -p /opt/conda'],
    ['conda installer with -bp', 'sh ./Miniforge3.sh -bp /opt/conda'],
    ['downloading the conda installer', 'wget https://repo.anaconda.com/miniconda/Miniconda3-latest-Linux-x86_64.sh'],
    ['cargo install --root', 'cargo install --root /usr/local ripgrep'],
    ['cleaning /root', 'rm -rf /root/.cache ~/.cache $HOME/.npm'],
    ['opening /root', 'chmod -R a+rX /root'],
    ['printing $HOME', 'echo "HOME=$HOME"'],
    ['a comment', '# never pip install --user or cd /root'],
    ['a quoted #', "echo '#' && pip install numpy"],
    ['/rootfs is not /root', 'cp -a $APPTAINER_ROOTFS/x /opt/x && ls /rootfs'],
    ['~= in a requirement', 'pip install "numpy~=1.26"'],
    ['huggingface download to a directory', 'hf download bert-base-uncased --local-dir /opt/models/bert'],
  ])('%s is fine', (_, line) => {
    expect(post(line)).toEqual([]);
  });

  test('setting the tool home first makes its installs fine', () => {
    expect(post('export CARGO_HOME=/usr/local/cargo', 'cargo install ripgrep')).toEqual([]);
    expect(post('export CARGO_HOME=/usr/local/cargo RUSTUP_HOME=/usr/local/rustup', 'curl https://sh.rustup.rs | sh -s -- -y')).toEqual([]);
    expect(post('export GOBIN=/usr/local/bin', 'go install example.org/tool@v1')).toEqual([]);
    expect(post('export UV_INSTALL_DIR=/usr/local/bin', 'curl -LsSf https://astral.sh/uv/install.sh | sh')).toEqual([]);
    expect(post('export HOME=/opt/home', 'cd $HOME && make')).toEqual([]);
    expect(post('export JULIA_DEPOT_PATH=/opt/julia', `julia -e 'using Pkg; Pkg.instantiate()'`)).toEqual([]);
  });

  test('continuation lines are read as one command, reported at its first line', () => {
    expect(post('pip install \\', '    --user numpy')).toMatchObject([{ line: 5 }]);
  });

  test('here-document text is not a command', () => {
    expect(post('cat > /etc/note <<EOF', 'pip install --user things', 'EOF', 'true')).toEqual([]);
  });

  test('only the final stage matters: earlier stages may build under /root', () => {
    const build = 'Bootstrap: docker\nFrom: golang\nStage: build\n%post\n  cd /root && go build -o hello .\n\n';
    const final = 'Bootstrap: docker\nFrom: alpine\n%files from build\n  /root/hello /bin/hello\n';
    expect(lint(build + final)).toEqual([]);
    expect(rules(final + '\n' + build.replace('Stage: build\n', ''))).toContain('root-home-install');
  });

  test('%appinstall is checked too, %runscript and %environment are not', () => {
    expect(rules(docker('%appinstall tool', '  pip install --user x'))).toEqual(['root-home-install']);
    expect(lint(docker('%runscript', '  exec $HOME/bin/tool', '%environment', '  export PATH=$HOME/bin:$PATH'))).toEqual([]);
  });
});

describe('package installs that wait for a confirmation', () => {
  const post = (line: string): Finding[] => findingsOf('install-needs-yes', docker('%post', `    ${line}`));

  test.each([
    ['apt-get install', 'apt-get install python3', 'add -y'],
    ['apt install after update', 'apt update && apt install git', 'add -y'],
    ['apt-get with DEBIAN_FRONTEND', 'DEBIAN_FRONTEND=noninteractive apt-get install --no-install-recommends git', 'add -y'],
    ['dnf', 'dnf install gcc', 'add -y'],
    ['yum update', 'yum update', 'add -y'],
    ['zypper', 'zypper install vim', 'zypper -n install'],
  ])('%s without a yes flag is a warning', (_, line, fix) => {
    const [f] = post(line);
    expect(f).toMatchObject({ line: 5, severity: 'warning' });
    expect(f.message).toContain(fix);
  });

  test.each([
    'apt-get install -y python3',
    'apt-get -y install python3',
    'apt-get install -yq python3',
    'apt-get -qq install python3',
    'apt-get install --yes python3',
    'apt install --assume-yes git',
    'apt-get update',
    'dnf -y install gcc',
    'yum install --assumeyes gcc',
    'zypper -n install vim',
    'zypper --non-interactive in vim',
    'zypper install -y vim',
    'yes | apt-get install python3',
    'microdnf install gcc',
    'apk add gcc',
  ])('%s is fine', (line) => {
    expect(post(line)).toEqual([]);
  });

  test('an apt configuration that assumes yes makes plain installs fine', () => {
    expect(rules(docker('%post', "  echo 'APT::Get::Assume-Yes \"true\";' > /etc/apt/apt.conf.d/90yes", '  apt-get install git'))).toEqual([]);
  });
});

describe('here-documents', () => {
  test('an indented end line never closes the here-document', () => {
    const [f] = lint(docker('%post', '    cat > /etc/motd <<EOF', '    hello', '    EOF', '    apt-get install -y git'));
    expect(f).toMatchObject({ line: 5, severity: 'warning', rule: 'heredoc-unterminated' });
    expect(f.message).toContain('closing `EOF` line is indented');
  });

  test('a missing end line is a warning too', () => {
    expect(findingsOf('heredoc-unterminated', docker('%runscript', '  cat <<END', '  usage'))[0].message).toContain('no line is exactly `END`');
  });

  test.each([
    ['end at column 1', ['    cat > /f <<EOF', '    text', 'EOF']],
    ['<<- with tab-indented end', ['    cat > /f <<-EOF', '\t\ttext', '\tEOF']],
    ['quoted delimiter', ["    cat > /f <<'EOF'", '    $text', 'EOF']],
    ['here-string', ['    cat <<< "$x"']],
    ['shift in arithmetic', ['    echo $((1 << 4))']],
    ['<< inside quotes', ['    echo "use <<EOF for here-documents"']],
    ['<< in a comment', ['    # cat <<EOF']],
  ])('%s is fine', (_, body) => {
    expect(lint(docker('%post', ...body))).toEqual([]);
  });
});

describe('file-level problems', () => {
  test('a byte-order mark is an error, because apptainer reads it as part of the first key', () => {
    expect(lint('\uFEFFBootstrap: docker\nFrom: ubuntu\n')).toMatchObject([{ rule: 'byte-order-mark', line: 1, column: 1, severity: 'error' }]);
  });

  test('CRLF line endings are fine', () => {
    expect(lint(docker('%post', '  apt-get install -y git', '%labels', '  A b').replace(/\n/g, '\r\n'))).toEqual([]);
  });

  test('findings are sorted by line, then column', () => {
    const findings = lint('Bootstrap: docker\n%post\n  echo {{ B }} {{ A }}\n%enviroment\n');
    expect(findings.map((f) => [f.line, f.column, f.rule])).toEqual([
      [1, undefined, 'missing-from'],
      [3, 8, 'undefined-build-arg'],
      [3, 16, 'undefined-build-arg'],
      [4, 1, 'unknown-section'],
    ]);
  });
});

describe('formatFinding', () => {
  test('prints file:line: severity: message, with the column when known', () => {
    const f: Finding = { line: 7, severity: 'error', rule: 'unknown-section', message: 'unknown section %enviroment; did you mean %environment?' };
    expect(formatFinding('app.def', f)).toBe('app.def:7: error: unknown section %enviroment; did you mean %environment?');
    expect(formatFinding('app.def', { ...f, column: 3, severity: 'warning' })).toBe('app.def:7:3: warning: unknown section %enviroment; did you mean %environment?');
  });
});
