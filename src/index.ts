// Entry point of the action (dist/index.js). Source maps are on before the rest loads, so that a bug's stack
// trace names the src/ files and lines, not the minified bundle's.
process.setSourceMapsEnabled(true);
const { run } = await import('./main.js');
await run();
