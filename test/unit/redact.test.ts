import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { redactEvent, redactText, redactUrl } from '../../src/transcript/redact.js';

describe('redactUrl', () => {
  it.each([
    ['postgres://app:s3cret@db:5432/orders', 'postgres://app:***@db:5432/orders'],
    [
      'postgresql://app:s3cret@db/orders?sslmode=require',
      'postgresql://app:***@db/orders?sslmode=require',
    ],
    ['mysql://root:s3cret@127.0.0.1:3306/app', 'mysql://root:***@127.0.0.1:3306/app'],
    ['redis://:s3cret@cache:6379/0', 'redis://:***@cache:6379/0'],
    ['https://admin:s3cret@pgbouncer.internal', 'https://admin:***@pgbouncer.internal'],
    ['postgres://app:p%40ss%2Fword@db/x', 'postgres://app:***@db/x'],
    // Unencoded @ and / in a password are invalid, but must not leak either.
    ['postgres://app:p@ss@db/x', 'postgres://app:***@db/x'],
    ['postgres://app:pa/ss@db/x', 'postgres://app:***@db/x'],
    ['postgres://app:s3cret@h1:5432,h2:5433/x', 'postgres://app:***@h1:5432,h2:5433/x'],
    [
      'postgres://db/x?user=app&password=s3cret&sslmode=require',
      'postgres://db/x?user=app&password=***&sslmode=require',
    ],
    ['postgres://db/x?sslpassword=s3cret', 'postgres://db/x?sslpassword=***'],
    ['jdbc:postgresql://app:s3cret@db/x', 'jdbc:postgresql://app:***@db/x'],
  ])('%s', (url, expected) => {
    expect(redactUrl(url)).toBe(expected);
  });

  it.each([
    'postgres://app@db:5432/orders',
    'postgres://db:5432/orders',
    'postgres://h1:5432,h2:5433/x',
    'http://prometheus:9090/api/v1/query?query=up',
    'https://example.com/users/@me',
  ])('leaves %s alone (no password)', (url) => {
    expect(redactUrl(url)).toBe(url);
  });
});

describe('redactText', () => {
  it.each([
    [
      'a DSN inside a message',
      'connect postgres://app:s3cret@db/x: timeout',
      'connect postgres://app:***@db/x: timeout',
    ],
    [
      'two DSNs',
      "--pg 'postgres://a:one@h/x' --mysql mysql://b:two@h/y",
      "--pg 'postgres://a:***@h/x' --mysql mysql://b:***@h/y",
    ],
    [
      'libpq conninfo',
      'host=db port=5432 user=app password=s3cret dbname=x',
      'host=db port=5432 user=app password=*** dbname=x',
    ],
    [
      'quoted conninfo value',
      "user=app password='se cret\\'s' dbname=x",
      "user=app password='***' dbname=x",
    ],
    ['spaces around =', 'password = s3cret host=db', 'password = *** host=db'],
    ['pwd=', 'Server=db;Uid=app;Pwd=s3cret', 'Server=db;Uid=app;Pwd=***'],
    ['PGPASSWORD', 'PGPASSWORD=s3cret psql -h db', 'PGPASSWORD=*** psql -h db'],
    ['MYSQL_PWD', 'env MYSQL_PWD="s3cret" mysql', 'env MYSQL_PWD="***" mysql'],
    ['token=', 'curl https://x/api?token=abc123&q=1', 'curl https://x/api?token=***&q=1'],
    ['GITHUB_TOKEN=', 'GITHUB_TOKEN=ghp_abc123 gh pr list', 'GITHUB_TOKEN=*** gh pr list'],
    [
      '--password value',
      'mysql --user app --password s3cret -h db',
      'mysql --user app --password *** -h db',
    ],
    ['--password=value', 'pgbouncer --password=s3cret', 'pgbouncer --password=***'],
    [
      'Authorization: Bearer',
      'Authorization: Bearer eyJhbGciOi.abc.def',
      'Authorization: Bearer ***',
    ],
    [
      'authorization: basic',
      "-H 'authorization: basic dXNlcjpwYXNz'",
      "-H 'authorization: basic ***'",
    ],
    ['a bare Bearer token', 'sent Bearer abc.def-ghi', 'sent Bearer ***'],
    [
      'JSON password field',
      '{"user":"app","password":"s3cret"}',
      '{"user":"app","password":"***"}',
    ],
    [
      'YAML password field',
      'db:\n  user: app\n  password: s3cret\n',
      'db:\n  user: app\n  password: ***\n',
    ],
    [
      'ALTER ROLE … PASSWORD',
      "ALTER ROLE app WITH LOGIN PASSWORD 'hunter2'",
      "ALTER ROLE app WITH LOGIN PASSWORD '***'",
    ],
    [
      'MySQL IDENTIFIED BY',
      "CREATE USER 'app'@'%' IDENTIFIED BY 'hunter2'",
      "CREATE USER 'app'@'%' IDENTIFIED BY '***'",
    ],
  ])('hides %s', (_name, input, expected) => {
    expect(redactText(input)).toBe(expected);
  });

  it.each([
    "SELECT pid FROM pg_stat_activity WHERE state = 'idle' AND usename <> 'postgres'",
    "WHERE state LIKE 'idle in transaction%' AND now() - state_change > make_interval(secs => $1)",
    'SELECT * FROM sessions WHERE token = $1',
    'UPDATE users SET password_hash = ? WHERE id = ?',
    'SELECT * FROM api_keys WHERE user_id = :user_id AND token = :token',
    "Access denied for user 'app'@'10.0.0.7' (using password: YES)",
    'FATAL:  password authentication failed for user "app"',
    'curl -H "Authorization: Bearer $ADMIN_TOKEN" http://api:8000/admin/config',
    'PGPASSWORD="${PGPASSWORD}" psql',
    'kubectl set env deployment/api DATABASE_POOL_SIZE=40 DATABASE_POOL_MAX_OVERFLOW=20',
    'sorry, too many clients already',
  ])('leaves %s alone', (text) => {
    expect(redactText(text)).toBe(text);
  });

  it("leaves poolctl's own runbooks and SQL unchanged", () => {
    const dir = join(import.meta.dirname, '../../runbooks/postgres');
    const files = readdirSync(dir);
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      expect(redactText(text), f).toBe(text);
    }
  });

  it('is idempotent', () => {
    const text =
      "postgres://a:b@h/x?password=c password='d' PGPASSWORD=e Authorization: Bearer f --token g";
    const once = redactText(text);
    expect(once).not.toMatch(/\bb@|'d'|=e\b|\bf\b|\bg\b/);
    expect(redactText(once)).toBe(once);
  });
});

describe('redactEvent', () => {
  it('redacts every string, secret-named fields and the value after a secret flag in argv', () => {
    const event = {
      type: 'session.start' as const,
      command: 'diagnose',
      argv: ['diagnose', '--pg', 'postgres://app:s3cret@db/x', '--password', 'hunter2', '--yes'],
      targets: ['postgres://app:s3cret@db/x'],
      config: { pg: { user: 'app', password: 'plain', rolpassword: 'SCRAM-SHA-256$4096:x' } },
      rows: [{ pid: 1, query: "ALTER USER app PASSWORD 'p'", state: 'idle' }],
      dryRun: false,
      pid: 4242,
    };
    const out = redactEvent(event);
    expect(out).toEqual({
      type: 'session.start',
      command: 'diagnose',
      argv: ['diagnose', '--pg', 'postgres://app:***@db/x', '--password', '***', '--yes'],
      targets: ['postgres://app:***@db/x'],
      config: { pg: { user: 'app', password: '***', rolpassword: '***' } },
      rows: [{ pid: 1, query: "ALTER USER app PASSWORD '***'", state: 'idle' }],
      dryRun: false,
      pid: 4242,
    });
    expect(JSON.stringify(out)).not.toMatch(/s3cret|hunter2|plain|SCRAM/);
    // The input is not modified.
    expect(event.argv[2]).toBe('postgres://app:s3cret@db/x');
  });
});

describe('redactText on large input', () => {
  it.each([
    ['blank lines', '\n'.repeat(200_000) + 'x'],
    ['spaces', ' '.repeat(200_000) + 'x'],
    ['repeated keys', 'password='.repeat(30_000)],
    ['repeated quotes', "password='".repeat(30_000)],
    ['repeated schemes', 'postgres://'.repeat(30_000)],
    ['repeated Bearer', 'Bearer '.repeat(30_000)],
  ])('stays linear on %s', (_name, text) => {
    const t0 = performance.now();
    redactText(text);
    expect(performance.now() - t0).toBeLessThan(1000);
  });
});
