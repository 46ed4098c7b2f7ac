// The grammar of image references, one for the linter (`From:` lines) and for resolving sources.
// The grammar of docker image references (distribution/reference), which apptainer uses for
// `Bootstrap: docker`: an optional registry host, lowercase path components, tag and digest.
export const DOCKER_REFERENCE = (() => {
  const alnum = '[a-z0-9]+';
  const component = `${alnum}(?:(?:[._]|__|-+)${alnum})*`;
  const hostPart = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
  const domain = `(?:${hostPart}(?:\\.${hostPart})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
  const tag = '[\\w][\\w.-]{0,127}';
  const digest = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
  return new RegExp(`^(?:${domain}/)?${component}(?:/${component})*(?::${tag})?(?:@${digest})?$`);
})();

/** Whether `text` is a reference apptainer's `Bootstrap: docker` accepts. */
export function isImageReference(text: string): boolean {
  return DOCKER_REFERENCE.test(text);
}
