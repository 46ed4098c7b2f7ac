// Entry point of the action's `post:` step (dist/post.js). Source maps are on before the rest loads, so that a
// bug's stack trace names the src/ files and lines, not the minified bundle's.
process.setSourceMapsEnabled(true);
const { post } = await import('./post-main.js');
await post();
