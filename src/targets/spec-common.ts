// What every engine's spec module shares: ports, the OS user, CA files named in a URL.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { UsageError } from '../errors.js';

export function parsePort(value: string, what: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new UsageError(`${what}: expected a port number 1–65535 (got "${value}")`);
  }
  return port;
}

export function osUser(): string {
  try {
    return userInfo().username;
  } catch {
    return 'postgres';
  }
}

/** A CA file named by `what` (ssl-ca, sslrootcert), read now: a bad path is a usage error. */
export function readCa(file: string, from: string, what = 'ssl-ca'): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(
      `${from}: ${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? err})`,
    );
  }
}
