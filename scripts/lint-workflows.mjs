// Validates action.yml and every workflow file against GitHub's schemas (@action-validator/core). Its bundled
// schema predates `node24`, so action.yml is validated with the runtime name swapped and `node24` is checked
// separately; it also predates the `attestations` permission, which is checked for its value alone.
import { validateAction, validateWorkflow } from '@action-validator/core';
import { readFile, readdir } from 'node:fs/promises';
import { parse } from 'yaml';

let failed = false;
function report(file, state) {
  if (state.errors.length === 0) return console.log(`ok  ${file}`);
  failed = true;
  console.error(`bad ${file}`);
  for (const e of state.errors) console.error(`    ${e.path ?? ''} ${e.title}${e.detail ? `: ${e.detail}` : ''}`);
}

const action = await readFile('action.yml', 'utf8');
const using = parse(action)?.runs?.using;
if (using !== 'node24') {
  failed = true;
  console.error(`bad action.yml: runs.using is ${using}, expected node24`);
}
report('action.yml', validateAction(action.replace(/^(\s+using:\s*)node24\s*$/m, '$1node20')));

for (const dir of ['.github/workflows', 'workflows']) {
  const files = (await readdir(dir).catch(() => [])).filter((f) => /\.ya?ml$/.test(f));
  for (const f of files) {
    const text = await readFile(`${dir}/${f}`, 'utf8');
    const attestations = [...text.matchAll(/^\s+attestations:\s*(\S+)/gm)].map((m) => m[1]);
    if (attestations.some((v) => !['read', 'write', 'none'].includes(v))) {
      failed = true;
      console.error(`bad ${dir}/${f}: attestations permission must be read, write or none`);
    }
    report(`${dir}/${f}`, validateWorkflow(text.replace(/^\s+attestations:.*\n/gm, '')));
  }
}
process.exit(failed ? 1 : 0);
