import { describe, expect, test } from '@jest/globals';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { commandHelp, commandInputs } from '../../src/cli/args.js';
import { COMMANDS, INPUTS, OUTPUTS } from '../../src/config/schema.js';

const action = parse(readFileSync('action.yml', 'utf8'));

describe('one schema for action.yml, the CLI and the README', () => {
  test('action.yml declares exactly the schema inputs, with their descriptions and defaults', () => {
    expect(Object.keys(action.inputs)).toEqual(INPUTS.map((i) => i.name));
    for (const spec of INPUTS) {
      expect(action.inputs[spec.name].description).toBe(spec.description);
      expect(action.inputs[spec.name].default).toBe(spec.default);
    }
  });

  test('action.yml declares exactly the schema outputs', () => {
    expect(Object.keys(action.outputs)).toEqual(OUTPUTS.map((o) => o.name));
    for (const o of OUTPUTS) expect(action.outputs[o.name].description).toBe(o.description);
  });

  test('the action runs on node24 from the bundle, with a post step that always runs', () => {
    expect(action.runs).toEqual({ using: 'node24', main: 'dist/index.js', post: 'dist/post.js', 'post-if': 'always()' });
  });

  test('every input and output name is kebab-case and every one is described', () => {
    for (const item of [...INPUTS, ...OUTPUTS]) {
      expect(item.name).toMatch(/^[a-z0-9]+(-[a-z0-9]+)*$/);
      expect(item.description.length).toBeGreaterThan(10);
    }
  });

  test("each command's --help lists every input of its stages, with the default", () => {
    for (const command of COMMANDS) {
      const help = commandHelp(command);
      for (const spec of commandInputs(command)) {
        expect(help).toContain(`--${spec.name} `);
        if (spec.default !== undefined) expect(help).toContain(`default: ${spec.default}`);
      }
    }
    const buildHelp = commandHelp(COMMANDS.find((c) => c.name === 'build')!);
    for (const name of ['source', 'definition', 'build-args', 'output', 'fakeroot', 'registry-username', 'registry-password', 'labels', 'builder']) {
      expect(buildHelp).toContain(`--${name} `);
    }
    expect(buildHelp).toContain('--registry-password-file PATH');
    expect(buildHelp).toContain('--build-arg KEY=VALUE');
  });

  test('the README inputs table and action.yml are what the schema generates', () => {
    // Exits non-zero and names the stale file when either differs.
    expect(() => execFileSync('node', ['scripts/gen-docs.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
    const readme = readFileSync('README.md', 'utf8');
    for (const spec of INPUTS) expect(readme).toContain(`| \`${spec.name}\` |`);
    for (const o of OUTPUTS) expect(readme).toContain(`| \`${o.name}\` |`);
  });
});
