// Host-key checking as OpenSSH does it, over the text of a known_hosts file or a pinned `SHA256:` fingerprint.
// Pure: no files, no sockets; connect.ts feeds it the key the server presented during key exchange.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

export type HostPatterns = { kind: 'plain'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };

export interface KnownHostEntry {
  /** 1-based line in the known_hosts text. */
  line: number;
  marker?: 'revoked' | 'cert-authority';
  hosts: HostPatterns;
  keyType: string;
  key: Buffer;
}

export interface KnownHosts {
  entries: KnownHostEntry[];
  /** Lines that were not used, and why (malformed lines, `@cert-authority` lines). */
  notes: string[];
}

export function parseKnownHosts(text: string): KnownHosts {
  const entries: KnownHostEntry[] = [];
  const notes: string[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = index + 1;
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostEntry['marker'];
    if (fields[0].startsWith('@')) {
      const name = fields.shift()!;
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else {
        notes.push(`known-hosts line ${line}: unknown marker ${name}, line ignored`);
        return;
      }
    }
    if (fields.length < 3) {
      notes.push(`known-hosts line ${line}: expected "hosts key-type base64-key", line ignored`);
      return;
    }
    const [hostField, keyType, keyBase64] = fields;
    const key = Buffer.from(keyBase64, 'base64');
    if (key.length === 0 || keyTypeOf(key) !== keyType) {
      notes.push(`known-hosts line ${line}: the key is not a valid ${keyType} key, line ignored`);
      return;
    }
    if (marker === 'cert-authority') {
      // Host certificates are not accepted by this client, so a CA line can never vouch for a host here.
      notes.push(`known-hosts line ${line}: @cert-authority lines are not supported (host certificates are not used), line ignored`);
      return;
    }
    const hosts = parseHosts(hostField);
    if (!hosts) {
      notes.push(`known-hosts line ${line}: malformed hashed host entry, line ignored`);
      return;
    }
    entries.push({ line, marker, hosts, keyType, key });
  });
  return { entries, notes };
}

function parseHosts(field: string): HostPatterns | undefined {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return undefined;
    const s = Buffer.from(salt, 'base64');
    const h = Buffer.from(hash, 'base64');
    return s.length === 20 && h.length === 20 ? { kind: 'hashed', salt: s, hash: h } : undefined;
  }
  return { kind: 'plain', patterns: field.split(',').filter((p) => p !== '') };
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function hostLookupName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, 'i');
}

/** Whether an entry's host field names this host and port, by OpenSSH's rules (negation wins). */
export function entryMatchesHost(entry: Pick<KnownHostEntry, 'hosts'>, host: string, port: number): boolean {
  const name = hostLookupName(host, port);
  if (entry.hosts.kind === 'hashed') {
    const digest = createHmac('sha1', entry.hosts.salt).update(name).digest();
    return timingSafeEqual(digest, entry.hosts.hash);
  }
  let matched = false;
  for (const pattern of entry.hosts.patterns) {
    const negated = pattern.startsWith('!');
    if (globToRegExp(negated ? pattern.slice(1) : pattern).test(name)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The key type named inside an SSH public key blob (its first string), e.g. `ssh-ed25519`. */
export function keyTypeOf(keyBlob: Buffer): string {
  if (keyBlob.length < 4) return '';
  const len = keyBlob.readUInt32BE(0);
  if (len > 64 || 4 + len > keyBlob.length) return '';
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** `SHA256:` and the unpadded base64 of the blob's SHA-256, as `ssh-keygen -l` and `ssh-keyscan` print it. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** Normalises a pinned fingerprint (`SHA256:...`, padding optional); undefined when it is not one. */
export function normaliseFingerprint(text: string): string | undefined {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(text.trim());
  return m ? `SHA256:${m[1]}` : undefined;
}

export type HostKeyVerdict =
  | { ok: true; via: 'known-hosts' | 'fingerprint'; keyType: string; fingerprint: string }
  | { ok: false; reason: 'no-trust-anchor' | 'unknown-host' | 'mismatch' | 'revoked'; keyType: string; fingerprint: string; message: string };

export interface VerifyHostKeyOptions {
  host: string;
  port: number;
  /** The public key blob the server presented. */
  keyBlob: Buffer;
  /** known_hosts text. */
  knownHosts?: string;
  /** One or more pinned fingerprints, separated by commas or whitespace. */
  fingerprint?: string;
}

/**
 * Decides whether to trust a server's host key. The key is accepted when known-hosts lists it for this host or
 * it matches a pinned fingerprint, and no `@revoked` line for this host names it. Without either anchor nothing
 * is trusted: there is no trust on first use.
 */
export function verifyHostKey(opts: VerifyHostKeyOptions): HostKeyVerdict {
  const keyType = keyTypeOf(opts.keyBlob);
  const fp = fingerprint(opts.keyBlob);
  const where = `${opts.host}:${opts.port}`;
  const pin = `ssh-keyscan -p ${opts.port} ${opts.host} into sftp-known-hosts, or sftp-host-fingerprint: ${fp} (after checking it out of band, e.g. with ssh-keygen -lf on the server's host key)`;
  const seen = `${where} presented a ${keyType} host key with fingerprint ${fp}`;
  const known = opts.knownHosts ? parseKnownHosts(opts.knownHosts).entries.filter((e) => entryMatchesHost(e, opts.host, opts.port)) : [];
  if (known.some((e) => e.marker === 'revoked' && e.key.equals(opts.keyBlob))) {
    return { ok: false, reason: 'revoked', keyType, fingerprint: fp, message: `host key refused: ${seen}, which known-hosts marks @revoked` };
  }
  if (known.some((e) => e.marker === undefined && e.key.equals(opts.keyBlob))) return { ok: true, via: 'known-hosts', keyType, fingerprint: fp };
  const pins = (opts.fingerprint ?? '').split(/[\s,]+/).filter((p) => p !== '');
  if (pins.some((p) => normaliseFingerprint(p) === fp)) return { ok: true, via: 'fingerprint', keyType, fingerprint: fp };

  if (!opts.knownHosts?.trim() && pins.length === 0) {
    return {
      ok: false,
      reason: 'no-trust-anchor',
      keyType,
      fingerprint: fp,
      message: `host key not verified: neither sftp-known-hosts nor sftp-host-fingerprint is set, and unknown hosts are never trusted. ${seen}; to pin it, put the output of ${pin}`,
    };
  }
  const listed = known.filter((e) => e.marker === undefined);
  if (listed.length > 0 || pins.length > 0) {
    const expected = [...listed.map((e) => `${e.keyType} ${fingerprint(e.key)} (known-hosts line ${e.line})`), ...pins.map((p) => `pinned ${p}`)];
    return {
      ok: false,
      reason: 'mismatch',
      keyType,
      fingerprint: fp,
      message: `HOST KEY MISMATCH: ${seen}, but expected ${expected.join(', ')}. Someone may be intercepting the connection, or the server's key changed; if the change is legitimate, update the pin with ${pin}`,
    };
  }
  return {
    ok: false,
    reason: 'unknown-host',
    keyType,
    fingerprint: fp,
    message: `host key not verified: sftp-known-hosts has no entry for ${hostLookupName(opts.host, opts.port)}. ${seen}; to pin it, add the output of ${pin}`,
  };
}
