// Host-key decisions over known_hosts text, checked against keys, fingerprints and hashed lines made by
// ssh-keygen (the fixtures below were printed by `ssh-keygen -l -E sha256` and `ssh-keygen -H`).
import { describe, expect, test } from '@jest/globals';
import { entryMatchesHost, fingerprint, hostLookupName, keyTypeOf, parseKnownHosts, verifyHostKey } from '../../src/publish/known-hosts.js';

const A = 'AAAAC3NzaC1lZDI1NTE5AAAAINsSlOM/IrLlwcCCQF3R5jLAKBMrGqxcfsJRb1oCLY2/';
const A_FP = 'SHA256:VRxBNfIxRQdWMjaaLLTp/6L79vV/Av5V0Sqel6bn0aw';
const B = 'AAAAC3NzaC1lZDI1NTE5AAAAINIRXpws1XgPKJ9e/BshGZ7aBn9qOrRehsb8Z23qq5bj';
const B_FP = 'SHA256:TRWTfx2ZT95Tu3krRR1yqGl9nMs/lS8oxr0ZF4hhWsA';
const C = 'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBBIwT9L/TD7R0mbS0Nh70IapzYNfr9PaYti4ba+V8gCUplTsKfelbJE86Cst+xD0PeFsMAQq8Y8tTR7s8bWljXY=';
const C_FP = 'SHA256:dKzSwM96cwGHwHSZmy75PqizIuEw+G2E42U/fAGlDlE';
// `ssh-keygen -H` of "[cluster.example.org]:2222 A" and "login.example.org B".
const HASHED = [
  `|1|WAlWE/ZfjcRzc9ONAnulP23cw3A=|j+LKYkkC3QdXi4ZC7Z0SWJTOCe4= ssh-ed25519 ${A}`,
  `|1|yi4IRnUkCL44xozCJUCQ8NOhqvs=|LoRdgAckQf4KsJghKdkiv1Tl7HY= ssh-ed25519 ${B}`,
].join('\n');

const blob = (b64: string) => Buffer.from(b64, 'base64');

describe('fingerprint', () => {
  test('matches what ssh-keygen -l prints', () => {
    expect(fingerprint(blob(A))).toBe(A_FP);
    expect(fingerprint(blob(B))).toBe(B_FP);
    expect(fingerprint(blob(C))).toBe(C_FP);
  });

  test('the key type is read from the blob', () => {
    expect(keyTypeOf(blob(A))).toBe('ssh-ed25519');
    expect(keyTypeOf(blob(C))).toBe('ecdsa-sha2-nistp256');
  });
});

describe('host patterns', () => {
  const match = (hosts: string, host: string, port = 22) => entryMatchesHost(parseKnownHosts(`${hosts} ssh-ed25519 ${A}`).entries[0], host, port);

  test('port 22 is looked up as the bare name, other ports as [host]:port', () => {
    expect(hostLookupName('h', 22)).toBe('h');
    expect(hostLookupName('h', 2222)).toBe('[h]:2222');
    expect(match('login.example.org', 'login.example.org')).toBe(true);
    expect(match('login.example.org', 'login.example.org', 2222)).toBe(false);
    expect(match('[login.example.org]:2222', 'login.example.org', 2222)).toBe(true);
  });

  test('comma lists, * and ? wildcards, case-insensitive', () => {
    expect(match('a.example.org,login.example.org', 'LOGIN.example.org')).toBe(true);
    expect(match('*.example.org', 'data.example.org')).toBe(true);
    expect(match('login?.example.org', 'login2.example.org')).toBe(true);
    expect(match('login?.example.org', 'login22.example.org')).toBe(false);
  });

  test('a negated pattern excludes a host even when another pattern matches it', () => {
    expect(match('*.example.org,!evil.example.org', 'evil.example.org')).toBe(false);
    expect(match('*.example.org,!evil.example.org', 'good.example.org')).toBe(true);
  });

  test('hashed entries match by HMAC-SHA1 of the lookup name', () => {
    const { entries } = parseKnownHosts(HASHED);
    expect(entryMatchesHost(entries[0], 'cluster.example.org', 2222)).toBe(true);
    expect(entryMatchesHost(entries[0], 'cluster.example.org', 22)).toBe(false);
    expect(entryMatchesHost(entries[1], 'login.example.org', 22)).toBe(true);
  });
});

describe('verifyHostKey', () => {
  const v = (knownHosts: string | undefined, key: string, host = 'login.example.org', port = 22, pin?: string) =>
    verifyHostKey({ host, port, keyBlob: blob(key), knownHosts, fingerprint: pin });

  test('accepts a key listed for the host, among several keys for it', () => {
    const kh = `# comment\n\nlogin.example.org ecdsa-sha2-nistp256 ${C}\nlogin.example.org ssh-ed25519 ${B}\n`;
    expect(v(kh, B)).toMatchObject({ ok: true, via: 'known-hosts', fingerprint: B_FP });
    expect(v(kh, C)).toMatchObject({ ok: true, via: 'known-hosts', keyType: 'ecdsa-sha2-nistp256' });
  });

  test('accepts hashed entries and [host]:port entries', () => {
    expect(v(HASHED, A, 'cluster.example.org', 2222)).toMatchObject({ ok: true });
    expect(v(HASHED, B)).toMatchObject({ ok: true });
  });

  test('refuses a different key for a known host, naming what it saw and how to pin it', () => {
    const verdict = v(`login.example.org ssh-ed25519 ${B}`, A);
    expect(verdict).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(!verdict.ok && verdict.message).toBe(
      `HOST KEY MISMATCH: login.example.org:22 presented a ssh-ed25519 host key with fingerprint ${A_FP}, but expected ssh-ed25519 ${B_FP} (known-hosts line 1). ` +
        `Someone may be intercepting the connection, or the server's key changed; if the change is legitimate, update the pin with ssh-keyscan -p 22 login.example.org into sftp-known-hosts, ` +
        `or sftp-host-fingerprint: ${A_FP} (after checking it out of band, e.g. with ssh-keygen -lf on the server's host key)`,
    );
  });

  test('refuses an unknown host', () => {
    const verdict = v(`other.example.org ssh-ed25519 ${A}`, A, 'login.example.org', 2222);
    expect(verdict).toMatchObject({ ok: false, reason: 'unknown-host' });
    expect(!verdict.ok && verdict.message).toContain('sftp-known-hosts has no entry for [login.example.org]:2222');
    expect(!verdict.ok && verdict.message).toContain('ssh-keyscan -p 2222 login.example.org');
  });

  test('refuses everything when neither known-hosts nor a fingerprint is given: no trust on first use', () => {
    for (const kh of [undefined, '', '  \n']) {
      const verdict = v(kh, A);
      expect(verdict).toMatchObject({ ok: false, reason: 'no-trust-anchor' });
      expect(!verdict.ok && verdict.message).toContain(`sftp-host-fingerprint: ${A_FP}`);
    }
  });

  test('a pinned fingerprint accepts its key (padding optional) and refuses another', () => {
    expect(v(undefined, A, 'h', 22, A_FP)).toMatchObject({ ok: true, via: 'fingerprint' });
    expect(v(undefined, A, 'h', 22, `${A_FP}=`)).toMatchObject({ ok: true });
    expect(v(undefined, A, 'h', 22, `${B_FP}, ${A_FP}`)).toMatchObject({ ok: true });
    expect(v(undefined, A, 'h', 22, B_FP)).toMatchObject({ ok: false, reason: 'mismatch' });
    expect(v(undefined, A, 'h', 22, 'VRxBNfIxRQdWMjaaLLTp/6L79vV/Av5V0Sqel6bn0aw')).toMatchObject({ ok: false });
  });

  test('a @revoked key is refused even when another line lists it or it is pinned', () => {
    const kh = `login.example.org ssh-ed25519 ${A}\n@revoked * ssh-ed25519 ${A}\n`;
    const verdict = v(kh, A, 'login.example.org', 22, A_FP);
    expect(verdict).toMatchObject({ ok: false, reason: 'revoked' });
    expect(!verdict.ok && verdict.message).toContain('marks @revoked');
  });

  test('@cert-authority lines are ignored with a note, as are malformed lines', () => {
    const parsed = parseKnownHosts(`@cert-authority *.example.org ssh-ed25519 ${A}\nlogin.example.org ssh-ed25519\nlogin.example.org ssh-rsa ${A}\n|1|bad|x ssh-ed25519 ${A}\n`);
    expect(parsed.entries).toEqual([]);
    expect(parsed.notes).toEqual([
      'known-hosts line 1: @cert-authority lines are not supported (host certificates are not used), line ignored',
      'known-hosts line 2: expected "hosts key-type base64-key", line ignored',
      'known-hosts line 3: the key is not a valid ssh-rsa key, line ignored',
      'known-hosts line 4: malformed hashed host entry, line ignored',
    ]);
    expect(v(`@cert-authority *.example.org ssh-ed25519 ${A}`, A)).toMatchObject({ ok: false, reason: 'unknown-host' });
  });
});
