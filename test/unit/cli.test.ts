import { describe, expect, test } from '@jest/globals';
import { commandHelp, generalHelp, parseCommandLine, UsageError, type ParsedCommand } from '../../src/cli/args.js';
import { COMMANDS } from '../../src/config/schema.js';

function parse(...argv: string[]): ParsedCommand {
  const parsed = parseCommandLine(argv);
  if (!parsed.command) throw new Error('expected a command');
  return parsed;
}

describe('command line', () => {
  test('flags carry the action input names', () => {
    const p = parse('build', '--definition', 'pi.def', '--fakeroot', 'true');
    expect(p.command.name).toBe('build');
    expect(p.values).toEqual({ definition: 'pi.def', fakeroot: 'true' });
  });

  test('repeated --build-arg and --label become multi-line inputs, joined with --build-args', () => {
    const p = parse('build', '--definition', 'd', '--build-arg', 'A=1', '--build-args', 'B=2', '--build-arg', 'C=3', '--label', 'x=y');
    expect(p.values['build-args'].split('\n').sort()).toEqual(['A=1', 'B=2', 'C=3']);
    expect(p.values.labels).toBe('x=y');
  });

  test('a bare boolean flag means true; an explicit value is kept', () => {
    expect(parse('build', '--dry-run', '--source', 'docker://x').values['dry-run']).toBe('true');
    expect(parse('build', '--source', 'docker://x', '--dry-run').values['dry-run']).toBe('true');
    expect(parse('build', '--dry-run', 'false').values['dry-run']).toBe('false');
  });

  test('secrets and multi-line inputs can come from files', () => {
    expect(parse('build', '--registry-password-file', '/run/secret').files).toEqual({ 'registry-password': '/run/secret' });
    expect(() => parse('build', '--registry-password', 'x', '--registry-password-file', 'f')).toThrow(/not both/);
  });

  test('table takes its own flags and the column inputs', () => {
    const p = parse('table', '--file', 'docs/img.rst', '--key', 'PyTorch', '--value', '/x.sif', '--check', '--table-key-column', 'Software');
    expect(p.flags).toEqual({ file: 'docs/img.rst', key: 'PyTorch', value: '/x.sif', check: true });
    expect(p.values).toEqual({ 'table-key-column': 'Software' });
    expect(() => parse('table', '--file', 'f')).toThrow(/needs --key NAME/);
  });

  test('lint and inspect take one file', () => {
    expect(parse('lint', 'a.def').positional).toEqual(['a.def']);
    expect(() => parse('inspect')).toThrow(/takes one FILE/);
  });

  test.each([
    [['frobnicate'], /unknown command 'frobnicate'; commands: build, lint, inspect/],
    [['pubish'], /unknown command 'pubish' \(did you mean 'publish'\?\); commands:/],
    [['build', '--sauce', 'x'], /Unknown option '--sauce'.*see build-image build --help/],
    [['build', 'pi.def'], /unexpected argument 'pi.def'/],
    [['build', '--source'], /--source.*argument missing/],
  ])('%j is a usage error', (argv, message) => {
    expect(() => parseCommandLine(argv as string[])).toThrow(UsageError);
    expect(() => parseCommandLine(argv as string[])).toThrow(message);
  });

  test('--version asks for the version', () => {
    expect(parseCommandLine(['--version'])).toEqual({ version: true });
    expect(parseCommandLine(['-V'])).toEqual({ version: true });
  });

  test('no command or --help shows the command list', () => {
    expect(parseCommandLine([])).toEqual({ help: true });
    expect(generalHelp()).toMatch(/build +Lint, build and verify/);
    for (const command of ['stage', 'smoke', 'publish', 'all', 'table']) expect(generalHelp()).toMatch(new RegExp(`^  ${command} +\\S`, 'm'));
  });

  test('help for a stage command says how to give secrets without putting them on the command line', () => {
    const help = commandHelp(COMMANDS.find((c) => c.name === 'build')!);
    expect(help).toContain('--registry-password-file PATH');
    expect(help).toMatch(/env\s+BUILD_IMAGE_REGISTRY_PASSWORD/);
    expect(() => parse('build', '--remote-dir', '/x')).toThrow(/Unknown option '--remote-dir'/);
    expect(help).not.toContain('`');
  });
});
