#!/usr/bin/env node
// Entry point of the command line (dist/cli.js). Source maps are on before the rest loads, so that a bug's stack
// trace names the src/ files and lines, not the minified bundle's.
process.setSourceMapsEnabled(true);
const { main } = await import('./cli-main.js');
process.exitCode = await main(process.argv.slice(2));
