import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startMariaDB, type MariaDBServer } from '../helpers/mariadb-server.js';
import { startPostgres, type PgServer } from '../helpers/postgres-server.js';
import { runCli, type CliResult } from '../helpers/run-cli.js';

// A verified TLS connection trusts the CAs in NODE_EXTRA_CA_CERTS (Node's own business: it loads
// them at start-up) or the file the URL names, run as users run poolctl, against servers whose
// certificate a throwaway CA signed.

let dir: string;
let caFile: string;
let pg: PgServer;
let maria: MariaDBServer;

/** A CA, and a certificate it signs for localhost and 127.0.0.1. */
function makeCertificates(): { cert: string; key: string } {
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  };
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const days = ['-days', '2'];
  openssl(
    'req',
    '-x509',
    ...ec,
    ...days,
    '-subj',
    '/CN=poolctl test CA',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
  );
  openssl('req', ...ec, '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  writeFileSync(path.join(dir, 'san.ext'), 'subjectAltName = DNS:localhost, IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    'server.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    ...days,
    '-extfile',
    'san.ext',
    '-out',
    'server.pem',
  );
  return {
    cert: readFileSync(path.join(dir, 'server.pem'), 'utf8'),
    key: readFileSync(path.join(dir, 'server.key'), 'utf8'),
  };
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'poolctl-tls-'));
  caFile = path.join(dir, 'ca.pem');
  const tls = makeCertificates();
  [pg, maria] = await Promise.all([startPostgres({ tls }), startMariaDB({ tls })]);
});
afterAll(async () => {
  await Promise.all([pg?.stop(), maria?.stop()]);
  rmSync(dir, { recursive: true, force: true });
});

function expectDiagnosed(result: CliResult, runbook: string): void {
  expect([0, 4], result.stderr).toContain(result.code);
  expect(JSON.parse(result.stdout)).toMatchObject({ runbook });
}

/** Exit 3 with one line that says the certificate is not trusted and what to do. */
function expectUntrusted(result: CliResult, caOption: string): void {
  expect(result.code, result.stderr).toBe(3);
  const lines = result.stderr.trim().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toContain('certificate not trusted (self-signed/unknown CA');
  expect(lines[0]).toContain(`${caOption}=FILE`);
  expect(lines[0]).toContain('NODE_EXTRA_CA_CERTS');
}

describe('PostgreSQL, sslmode=verify-full', () => {
  const url = (): string => `${pg.superuserUrl}?sslmode=verify-full`;
  const diagnose = (env: Record<string, string | undefined>, extra = ''): Promise<CliResult> =>
    runCli(['diagnose', '--pg', url() + extra, '--output', 'json'], { env });

  it('trusts the CA in NODE_EXTRA_CA_CERTS', async () => {
    expectDiagnosed(await diagnose({ NODE_EXTRA_CA_CERTS: caFile }), 'postgres/pool-exhausted');
  });

  it('refuses the server without it, in one line with the way forward', async () => {
    expectUntrusted(await diagnose({ NODE_EXTRA_CA_CERTS: undefined }), 'sslrootcert');
  });

  it('trusts the CA given with sslrootcert, NODE_EXTRA_CA_CERTS or not', async () => {
    const result = await diagnose({ NODE_EXTRA_CA_CERTS: undefined }, `&sslrootcert=${caFile}`);
    expectDiagnosed(result, 'postgres/pool-exhausted');
  });

  it('poolctl drill connects the same way', async () => {
    const drill = (env: Record<string, string | undefined>) =>
      runCli(['drill', '--pg', url(), '--idle', '2', '--hold', '1s', '--output', 'json'], { env });
    const trusted = await drill({ NODE_EXTRA_CA_CERTS: caFile });
    expect(trusted.code, trusted.stderr).toBe(0);
    expect(JSON.parse(trusted.stdout)).toMatchObject({ held: { idle: 2 } });
    const untrusted = await drill({ NODE_EXTRA_CA_CERTS: undefined });
    expect(untrusted.code).toBe(3);
    expect(untrusted.stderr).toMatch(/certificate not trusted/);
  });
});

describe('PostgreSQL, the sslmodes that do not check the certificate', () => {
  let plain: PgServer | undefined;
  afterAll(async () => {
    await plain?.stop();
  });

  it('require and prefer encrypt without checking, as psql does', async () => {
    for (const mode of ['require', 'prefer']) {
      const result = await runCli(
        ['diagnose', '--pg', `${pg.superuserUrl}?sslmode=${mode}`, '--output', 'json'],
        { env: { NODE_EXTRA_CA_CERTS: undefined } },
      );
      expectDiagnosed(result, 'postgres/pool-exhausted');
    }
  });

  it('prefer (also as PGSSLMODE) connects without TLS where the server has none; require refuses', async () => {
    plain = await startPostgres();
    const prefer = await runCli([
      'diagnose',
      '--pg',
      `${plain.superuserUrl}?sslmode=prefer`,
      '--output',
      'json',
    ]);
    expectDiagnosed(prefer, 'postgres/pool-exhausted');
    const fromEnv = await runCli(['diagnose', '--pg', plain.superuserUrl, '--output', 'json'], {
      env: { PGSSLMODE: 'prefer' },
    });
    expectDiagnosed(fromEnv, 'postgres/pool-exhausted');
    const required = await runCli([
      'diagnose',
      '--pg',
      `${plain.superuserUrl}?sslmode=require`,
      '--output',
      'json',
    ]);
    expect(required.code).toBe(3);
    expect(required.stderr.trim().split('\n')).toHaveLength(1);
    expect(required.stderr).toMatch(/SSL/);
  });
});

describe('MariaDB, ssl-mode=VERIFY_IDENTITY', () => {
  const url = (): string => `${maria.rootUrl}?ssl-mode=VERIFY_IDENTITY`;
  const diagnose = (env: Record<string, string | undefined>, extra = ''): Promise<CliResult> =>
    runCli(['diagnose', '--mysql', url() + extra, '--output', 'json'], { env });

  it('trusts the CA in NODE_EXTRA_CA_CERTS', async () => {
    expectDiagnosed(await diagnose({ NODE_EXTRA_CA_CERTS: caFile }), 'mysql/pool-exhausted');
  });

  it('refuses the server without it, in one line with the way forward', async () => {
    expectUntrusted(await diagnose({ NODE_EXTRA_CA_CERTS: undefined }), 'ssl-ca');
  });

  it('trusts the CA given with ssl-ca, NODE_EXTRA_CA_CERTS or not', async () => {
    const result = await diagnose({ NODE_EXTRA_CA_CERTS: undefined }, `&ssl-ca=${caFile}`);
    expectDiagnosed(result, 'mysql/pool-exhausted');
  });
});
