// What this run holds outside its own memory: remote locks, Slurm jobs, enroot containers, temporary directories.
// Stages register a resource when they take it and drop it when they give it back, so that whatever is left when
// the run is cut short (a signal, a drained event loop, a killed step) can be given back by the CLI's exit path or the action's
// `post:` step, which reads this list from the state the main step saved.

export type Resource =
  | { kind: 'remote-lock'; path: string; token: string }
  | { kind: 'slurm-job'; id: string }
  /**
   * A container `enroot create` made, with the variables enroot finds its paths by (ENROOT_*, XDG_*) as they were
   * when it was created, so that `enroot remove -f` looks in the same data path.
   */
  | { kind: 'enroot-container'; name: string; env: Record<string, string> }
  /** A temporary directory or file (a partial image): removed whole. */
  | { kind: 'temp-dir'; path: string };

/** The action's state key under which the main step lists what it holds, for the post step. */
export const RESOURCES_STATE = 'resources';

type Listener = (held: Resource[]) => void;

const held = new Map<string, Resource>();
const listeners = new Set<Listener>();

function keyOf(r: Resource): string {
  if (r.kind === 'slurm-job') return `slurm-job:${r.id}`;
  if (r.kind === 'enroot-container') return `enroot-container:${r.env.ENROOT_DATA_PATH ?? ''}:${r.name}`;
  return `${r.kind}:${r.path}`;
}

function changed(): void {
  const list = heldResources();
  for (const listener of listeners) listener(list);
}

/** Records a resource as held; the returned function records it as given back. */
export function hold(resource: Resource): () => void {
  const key = keyOf(resource);
  held.set(key, resource);
  changed();
  return () => {
    if (held.get(key) === resource) {
      held.delete(key);
      changed();
    }
  };
}

export function heldResources(): Resource[] {
  return [...held.values()];
}

/** Called with the whole list after every change (the action saves it as state for its post step). */
export function onResourcesChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Parses a saved list, ignoring anything malformed (state is written by this tool, but read defensively). */
export function parseResources(text: string | undefined): Resource[] {
  if (!text) return [];
  try {
    const value = JSON.parse(text) as unknown;
    if (!Array.isArray(value)) return [];
    return value.filter((r): r is Resource => {
      const o = r as Record<string, unknown>;
      if (o?.kind === 'remote-lock') return typeof o.path === 'string' && typeof o.token === 'string';
      if (o?.kind === 'slurm-job') return typeof o.id === 'string' && /^\d+(_\d+)?$/.test(o.id);
      if (o?.kind === 'enroot-container') return typeof o.name === 'string' && ENROOT_NAME.test(o.name) && isEnrootEnv(o.env);
      if (o?.kind === 'temp-dir') return typeof o.path === 'string' && o.path.startsWith('/');
      return false;
    });
  } catch {
    return [];
  }
}

/** A container name as enroot takes it (no `/`, no leading `-`, which would read as an option). */
const ENROOT_NAME = /^[\w.+][\w.+-]*$/;

/** The variables an enroot container's resource keeps: enroot's own settings and the XDG paths its defaults use. */
const ENROOT_ENV = /^(ENROOT|XDG)_[A-Z0-9_]+$/;

/** The resource for a container created under `env` (only the variables that locate it are kept). */
export function enrootContainer(name: string, env: NodeJS.ProcessEnv): Resource {
  const kept = Object.entries(env).filter((e): e is [string, string] => ENROOT_ENV.test(e[0]) && typeof e[1] === 'string');
  return { kind: 'enroot-container', name, env: Object.fromEntries(kept) };
}

/** The environment to remove it under: `base` with enroot's variables replaced by those it was created under. */
export function enrootEnvironment(container: Extract<Resource, { kind: 'enroot-container' }>, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const rest = Object.entries(base).filter(([k]) => !ENROOT_ENV.test(k));
  return { ...Object.fromEntries(rest), ...container.env };
}

function isEnrootEnv(env: unknown): env is Record<string, string> {
  if (typeof env !== 'object' || env === null || Array.isArray(env)) return false;
  return Object.entries(env).every(([k, v]) => ENROOT_ENV.test(k) && typeof v === 'string');
}
