// The vocabulary of definition files that apptainer 1.4.5 accepts: header keys, bootstrap agents, sections.
import { APP_SECTIONS, STANDARD_SECTIONS } from './definition.js';

/** Header keys apptainer knows (compared lowercased); `OtherURL<N>` is matched separately. */
export const HEADER_KEYS = [
  'Bootstrap', 'From', 'IncludeCmd', 'MirrorURL', 'UpdateURL', 'OSVersion', 'Include', 'Library',
  'Registry', 'Namespace', 'Stage', 'Product', 'User', 'Regcode', 'ProductPGP', 'RegisterURL',
  'Modules', 'Fingerprints', 'ConfURL', 'SetOpt',
];
export const headerKeyByLower = new Map(HEADER_KEYS.map((k) => [k.toLowerCase(), k]));

/** Agents apptainer 1.4.5 accepts (`dnf` is an alias of `yum`); they are case-sensitive. */
export const AGENTS = [
  'docker', 'docker-archive', 'docker-daemon', 'oci', 'oci-archive', 'library', 'oras', 'shub',
  'localimage', 'scratch', 'busybox', 'debootstrap', 'arch', 'yum', 'dnf', 'zypper',
];
/** Agents that build on an existing image or archive named by `From:`. */
export const AGENTS_NEEDING_FROM = new Set([
  'docker', 'docker-archive', 'docker-daemon', 'oci', 'oci-archive', 'library', 'oras', 'shub', 'localimage',
]);

export const SECTIONS: readonly string[] = [...STANDARD_SECTIONS, ...APP_SECTIONS];
export const appSections: ReadonlySet<string> = new Set(APP_SECTIONS);
/** Sections whose duplicates apptainer silently concatenates into one entry point. */
export const ENTRY_POINTS = new Set(['runscript', 'startscript', 'test', 'apprun', 'appstart', 'apptest']);
/** Build-time scripts whose arguments apptainer passes to /bin/sh. */
export const SHELL_ARG_SECTIONS = new Set(['setup', 'post', 'pre']);
/** Sections apptainer runs or sources with /bin/sh. */
export const SHELL_SECTIONS = new Set([
  'setup', 'pre', 'post', 'test', 'runscript', 'startscript', 'environment',
  'appinstall', 'apprun', 'apptest', 'appstart', 'appenv',
]);
/** Scripts that run inside the container at build time, as root with HOME=/root. */
export const BUILD_SCRIPTS = new Set(['post', 'appinstall']);
