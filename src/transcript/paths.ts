import { randomInt } from 'node:crypto';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { UsageError } from '../errors.js';
import { sanitizeInline } from '../io/sanitize.js';

type Env = Record<string, string | undefined>;

/** `$XDG_STATE_HOME/poolctl`, else `~/.local/state/poolctl`. */
export function stateDir(env: Env): string {
  const xdg = env.XDG_STATE_HOME;
  // The XDG spec says a relative path is invalid and must be ignored.
  if (xdg && isAbsolute(xdg)) return join(xdg, 'poolctl');
  return join(env.HOME || homedir(), '.local', 'state', 'poolctl');
}

/** Where incident transcripts live by default: one `<incident>.jsonl` per incident. */
export function incidentsDir(env: Env): string {
  return join(stateDir(env), 'incidents');
}

/** A new incident id from the UTC time and 4 random base36 characters: `inc-20261122-031502-k3f9`. */
export function newIncidentId(now: Date): string {
  const iso = now.toISOString(); // 2026-11-22T03:15:02.123Z
  const date = iso.slice(0, 10).replaceAll('-', '');
  const time = iso.slice(11, 19).replaceAll(':', '');
  const suffix = randomInt(36 ** 4)
    .toString(36)
    .padStart(4, '0');
  return `inc-${date}-${time}-${suffix}`;
}

const INCIDENT_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** Returns `id` when it is safe as a file name; otherwise throws a `UsageError` naming the flag. */
export function validateIncidentId(id: string): string {
  if (INCIDENT_ID.test(id) && !/^\.+$/.test(id)) return id;
  const shown = sanitizeInline(id).slice(0, 80);
  throw new UsageError(
    `--incident ${JSON.stringify(shown)}: use letters, digits, -, _ or . (1 to 64 characters)`,
  );
}

export interface TranscriptPathOptions {
  /** `--transcript PATH`: wins over the incident directory. */
  transcriptFlag?: string;
  /** `--incident ID`: validated; generated from `now` when absent. */
  incident?: string;
  env: Env;
  now: Date;
}

/**
 * Decides the transcript file and incident id of a run. With `--transcript PATH` the file is
 * PATH and the incident defaults to its base name without `.jsonl`; otherwise the file is
 * `<incidentsDir>/<incident>.jsonl`, so every command run with the same `--incident` shares it.
 */
export function transcriptPathFor(opts: TranscriptPathOptions): { path: string; incident: string } {
  const incident = opts.incident === undefined ? undefined : validateIncidentId(opts.incident);
  if (opts.transcriptFlag) {
    const path = resolve(opts.transcriptFlag);
    return { path, incident: incident ?? incidentFromFile(path, opts.now) };
  }
  const id = incident ?? newIncidentId(opts.now);
  return { path: join(incidentsDir(opts.env), `${id}.jsonl`), incident: id };
}

function incidentFromFile(path: string, now: Date): string {
  const name = basename(path, '.jsonl')
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .slice(0, 64);
  return name && !/^\.+$/.test(name) ? name : newIncidentId(now);
}
