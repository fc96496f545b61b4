import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { resolveDatabaseTarget, type TargetFlags } from '../../src/targets/resolve.js';
import { certificateProblem } from '../../src/targets/tls-trust.js';

const dir = mkdtempSync(path.join(tmpdir(), 'poolctl-tls-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two certificates with some text around them, as in a distribution's bundle. The bodies need not
// be valid DER: the TLS settings only carry the file's text, OpenSSL parses it.
const CERT_A = '-----BEGIN CERTIFICATE-----\nQUFB\n-----END CERTIFICATE-----';
const CERT_B = '-----BEGIN CERTIFICATE-----\nQkJC\n-----END CERTIFICATE-----';
const bundle = path.join(dir, 'extra.pem');
writeFileSync(bundle, `# Our CA\n${CERT_A}\n\n# Another\n${CERT_B}\n`);

describe('certificateProblem', () => {
  it('names an unknown CA by code (Node) or message (mysql2 replaces the code)', () => {
    const pg = Object.assign(new Error('self-signed certificate in certificate chain'), {
      code: 'SELF_SIGNED_CERT_IN_CHAIN',
    });
    expect(certificateProblem(pg, 'sslrootcert')).toBe(
      'certificate not trusted (self-signed/unknown CA: self-signed certificate in certificate chain): ' +
        'pass the CA with sslrootcert=FILE in the URL or NODE_EXTRA_CA_CERTS=FILE',
    );
    const mysql = Object.assign(new Error('unable to verify the first certificate'), {
      code: 'HANDSHAKE_SSL_ERROR',
    });
    expect(certificateProblem(mysql, 'ssl-ca')).toMatch(/^certificate not trusted .* ssl-ca=FILE/);
  });

  it('names a certificate for another host, and nothing else', () => {
    const altname = Object.assign(
      new Error(
        "Hostname/IP does not match certificate's altnames: IP: 10.0.0.9 is not in the cert's list: 127.0.0.1",
      ),
      { code: 'ERR_TLS_CERT_ALTNAME_INVALID' },
    );
    expect(certificateProblem(altname, 'sslrootcert')).toMatch(
      /^the certificate is for another host/,
    );
    expect(certificateProblem({ code: 'ECONNREFUSED', message: 'x' }, 'ssl-ca')).toBeUndefined();
  });
});

describe('TLS settings from the target', () => {
  const flags = (f: Partial<TargetFlags>): TargetFlags => ({
    connectTimeoutMs: 5000,
    statementTimeoutMs: 10000,
    ...f,
  });
  const tlsOf = async (f: Partial<TargetFlags>, env: NodeJS.ProcessEnv = {}) =>
    (await resolveDatabaseTarget(flags(f), env)).tls;

  it('PostgreSQL: the URL’s sslmode and sslrootcert, else PGSSLMODE and PGSSLROOTCERT, as libpq reads them', async () => {
    const url = 'postgres://app@db:5432/app';
    const spec = async (f: Partial<TargetFlags>, env: NodeJS.ProcessEnv = {}) => {
      const { tls, tlsFallbackToPlain } = await resolveDatabaseTarget(flags(f), env);
      return { tls, fallback: tlsFallbackToPlain ?? false };
    };
    const unchecked = { rejectUnauthorized: false };
    expect(await tlsOf({ pg: url })).toBeUndefined();
    expect(await tlsOf({ pg: `${url}?sslmode=disable` }, { PGSSLMODE: 'require' })).toBe(false);
    // prefer/allow: TLS without checking, plain where the server has none (postgres.ts).
    expect(await spec({ pg: `${url}?sslmode=prefer` })).toEqual({ tls: unchecked, fallback: true });
    expect(await spec({ pg: url }, { PGSSLMODE: 'allow' })).toEqual({
      tls: unchecked,
      fallback: true,
    });
    // psql's require encrypts without checking the certificate; so does poolctl's.
    expect(await spec({ pg: `${url}?sslmode=require` })).toEqual({
      tls: unchecked,
      fallback: false,
    });
    expect(await tlsOf({ pg: url }, { PGSSLMODE: 'require' })).toEqual(unchecked);
    // pg's own spellings.
    expect(await tlsOf({ pg: `${url}?sslmode=no-verify` })).toEqual(unchecked);
    expect(await tlsOf({ pg: `${url}?ssl=no-verify` })).toEqual(unchecked);
    expect(await tlsOf({ pg: `${url}?ssl=true` })).toEqual({});
    expect(await tlsOf({ pg: `${url}?sslmode=verify-full` })).toEqual({});
    expect(await tlsOf({ pg: url }, { PGSSLMODE: 'verify-full' })).toEqual({});
    expect(await tlsOf({ pg: `${url}?sslmode=verify-full&sslrootcert=${bundle}` })).toEqual({
      ca: expect.stringContaining(CERT_A),
    });
    // verify-ca checks the chain, not the host name.
    const verifyCa = await tlsOf({ pg: `${url}?sslmode=verify-ca&sslrootcert=${bundle}` });
    expect(verifyCa).toMatchObject({ ca: expect.stringContaining(CERT_A) });
    expect((verifyCa as { checkServerIdentity?: () => unknown }).checkServerIdentity?.()).toBe(
      undefined,
    );
    // The root certificate from PGSSLROOTCERT, else ~/.postgresql/root.crt; with one, require
    // checks the chain, as in libpq.
    expect(await tlsOf({ pg: url }, { PGSSLMODE: 'verify-full', PGSSLROOTCERT: bundle })).toEqual({
      ca: expect.stringContaining(CERT_A),
    });
    const home = mkdtempSync(path.join(tmpdir(), 'poolctl-home-'));
    mkdirSync(path.join(home, '.postgresql'));
    writeFileSync(path.join(home, '.postgresql', 'root.crt'), readFileSync(bundle));
    const required = await tlsOf({ pg: `${url}?sslmode=require` }, { HOME: home });
    expect(required).toMatchObject({ ca: expect.stringContaining(CERT_A) });
    expect(required).not.toHaveProperty('rejectUnauthorized');
    await expect(
      tlsOf({ pg: `${url}?sslmode=verify-full&sslrootcert=/nonexistent` }),
    ).rejects.toThrow(/sslrootcert: cannot read \/nonexistent \(ENOENT\)/);
    await expect(tlsOf({ pg: `${url}?sslmode=sometimes` })).rejects.toThrow(/sslmode: expected/);
  });

  it('MySQL: ssl-mode and ssl-ca as the mysql client takes them', async () => {
    const url = 'mysql://root@db:3306/';
    expect(await tlsOf({ mysql: url })).toBeUndefined();
    expect(await tlsOf({ mysql: `${url}?ssl-mode=DISABLED` })).toBeUndefined();
    expect(await tlsOf({ mysql: `${url}?ssl-mode=required` })).toEqual({
      rejectUnauthorized: false,
    });
    expect(await tlsOf({ mysql: `${url}?ssl-mode=VERIFY_CA` })).toEqual({});
    expect(await tlsOf({ mysql: `${url}?ssl-mode=VERIFY_IDENTITY` })).toEqual({
      verifyIdentity: true,
    });
    const ca = { ca: expect.stringContaining(CERT_A) };
    expect(await tlsOf({ mysql: `${url}?ssl-ca=${bundle}` })).toEqual(ca);
    expect(await tlsOf({ mysql: `${url}?ssl-mode=REQUIRED&ssl-ca=${bundle}` })).toEqual(ca);
    await expect(tlsOf({ mysql: `${url}?ssl-mode=PREFERRED` })).rejects.toThrow(UsageError);
    await expect(tlsOf({ mysql: `${url}?ssl-ca=${dir}/none.pem` })).rejects.toThrow(
      /--mysql: ssl-ca: cannot read .*none\.pem \(ENOENT\)/,
    );
    for (const spelling of ['ssl=true', 'sslMode=REQUIRED', 'ssl-mode=']) {
      await expect(tlsOf({ mysql: `${url}?${spelling}` })).rejects.toThrow(
        /unknown parameter|ssl-mode: expected/,
      );
    }
  });
});
