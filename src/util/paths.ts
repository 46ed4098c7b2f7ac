// Names the pipeline puts on the cluster.

/** A file name that stays in its directory and is not hidden: no "/", no NUL, not starting with ".". */
export function isPlainFileName(name: string): boolean {
  return /^[^/\0]+$/.test(name) && !name.startsWith('.');
}
