/** What a redacted secret is replaced with. */
export const MASK = '***';

// A URL from its scheme to the next whitespace or quote: the userinfo is found in code, below.
const URL_TOKEN = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s'"`<>]+)/gi;
// Secret-looking query parameters inside a URL; the value ends at & or #.
const URL_PARAM =
  /([?&](?:[\w-]*(?:password|passwd|pwd|secret|token)|[\w-]*api[_-]?key|sslkey)=)(?!\*\*\*)[^&#]*/gi;

const SECRET_WORD = String.raw`\w*(?:password|passwd|pwd|secret|token|api[_-]?key)`;
// A value: single-quoted (libpq and SQL, with \' or '' escapes), double-quoted, or up to whitespace.
const VALUE = String.raw`(?!['"]?\*\*\*)(?:'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"|[^\s'"]+)`;
// Values that name a secret without being one: a shell variable ($ADMIN_TOKEN, "${PGPASSWORD}")
// or a SQL bind parameter ($1, ?, :name). Case-sensitive on purpose: `$ecret` may be a password.
const PLACEHOLDER = /^(['"]?)(?:\$\d+|\$\{?[A-Z_][A-Z0-9_]*\}?|\?|:[a-z_]\w*)\1$/;

const TEXT_RULES: [RegExp, (m: string, ...groups: string[]) => string][] = [
  // key=value: libpq conninfo, environment assignments (PGPASSWORD=, MYSQL_PWD=, GITHUB_TOKEN=),
  // and --password=….
  [new RegExp(String.raw`(\b${SECRET_WORD}\b\s*=\s*)(${VALUE})`, 'gi'), keep1],
  // JSON "password": "…" and YAML `password: …` at the start of a line. A bare `password: YES`
  // in prose (MySQL's "using password: YES") is left alone.
  [new RegExp(String.raw`("${SECRET_WORD}"\s*:\s*)(${VALUE})`, 'gi'), keep1],
  // (Only [ \t] before the key: \s* at every line start would go quadratic on blank lines.)
  [
    new RegExp(String.raw`^([ \t]*(?:-[ \t]+)?${SECRET_WORD}[ \t]*:[ \t]*)(${VALUE})`, 'gim'),
    keep1,
  ],
  // --password secret, --api-token secret (the = form is covered above).
  [
    new RegExp(
      String.raw`(--[\w-]*(?:password|passwd|pwd|secret|token|api-key)\s+)(?!-)(${VALUE})`,
      'gi',
    ),
    keep1,
  ],
  // Authorization: Bearer|Basic|Token <credentials>, and a bare "Bearer <token>".
  [
    /(\bAuthorization\s*[:=]\s*(?:(?:Bearer|Basic|Token|Digest)\s+)?)(?!\*\*\*|(?:Bearer|Basic|Token|Digest)\s)([^\s'",]+)/gi,
    keep1,
  ],
  [/\b(Bearer\s+)(?!\*\*\*)([\w.~+/=${}-]+)/g, keep1],
  // SQL that sets a password: ALTER ROLE … PASSWORD '…', MySQL IDENTIFIED BY '…'.
  [
    /(\b(?:PASSWORD|IDENTIFIED\s+(?:WITH\s+\w+\s+)?BY)\s+)(?!'\*\*\*')('(?:[^'\\]|\\.|'')*')/gi,
    keep1,
  ],
];

// Every rule above needs one of these words (or a URL); most text has none, and a kill of 1,000
// sessions records thousands of strings.
const MIGHT_HOLD_A_SECRET = /:\/\/|pass|pwd|secret|token|api[_-]?key|authoriz|bearer|identified/i;

/** Keeps the first group and masks the second. */
function keep1(_m: string, head: string, value: string): string {
  return head + mask(value);
}

/** Keeps the quotes around a quoted secret so the text still reads as the same syntax. */
function mask(value: string): string {
  if (PLACEHOLDER.test(value)) return value;
  const q = value[0];
  return q === "'" || q === '"' ? `${q}${MASK}${q}` : MASK;
}

/**
 * Hides the password of a URL of any scheme and keeps the user:
 * `postgres://app:s3cret@db:5432/x` → `postgres://app:***@db:5432/x`. Secret query parameters
 * (`?password=…`, `sslpassword`, `token`, …) are hidden as well.
 */
export function redactUrl(url: string): string {
  return url.replace(
    URL_TOKEN,
    (_m, scheme: string, rest: string) => scheme + redactAuthority(rest),
  );
}

/**
 * A URL fit to repeat in a command poolctl suggests: the password and the secret parameters left
 * out rather than masked, so that the command, when run, takes the password from PGPASSWORD,
 * ~/.pgpass or MYSQL_PWD instead of trying `***`. `mysql://app:pw@db/?password=x&ssl-mode=REQUIRED`
 * → `mysql://app@db/?ssl-mode=REQUIRED`. URLs inside longer text are handled too.
 */
export function withoutUrlSecrets(text: string): string {
  let out = redactUrl(text).replace(/(\/\/[^\s/@:]*):\*\*\*@/g, '$1@');
  // One secret parameter at a time: `?password=***&token=***` shares the `&` between two.
  for (let before = ''; before !== out;) {
    before = out;
    out = out.replace(/([?&])[^=&#\s]+=\*\*\*(&|(?=[#\s'"])|$)/, (_m, sep: string, next: string) =>
      next ? sep : '',
    );
  }
  return out;
}

function redactAuthority(rest: string): string {
  const end = rest.search(/[/?#]/);
  const authority = end < 0 ? rest : rest.slice(0, end);
  let at = authority.lastIndexOf('@');
  if (at < 0) {
    // An unencoded / ? or # in the password ends the authority early (`u:pa/ss@host`): a colon
    // not followed by a port means userinfo, so hide everything up to the last @.
    const colon = authority.indexOf(':');
    const port = colon < 0 ? '' : authority.slice(colon + 1);
    if (colon >= 0 && !/^\d*(,|$)/.test(port)) at = rest.lastIndexOf('@');
  }
  let out = rest;
  if (at >= 0) {
    const userinfo = rest.slice(0, at);
    const colon = userinfo.indexOf(':');
    if (colon >= 0) out = `${userinfo.slice(0, colon)}:${MASK}${rest.slice(at)}`;
  }
  return out.replace(URL_PARAM, (_m, key: string) => key + MASK);
}

/**
 * Hides credentials inside free text: URL passwords, `password=…`/`pwd=…` in libpq conninfo
 * strings, `PGPASSWORD=…`, `MYSQL_PWD=…`, `token=…`, `--password …`, `Authorization: Bearer …`,
 * JSON/YAML password fields and `PASSWORD '…'` in SQL. Ordinary SQL is left as it was.
 * Applying it twice gives the same text as applying it once.
 */
export function redactText(text: string): string {
  if (!MIGHT_HOLD_A_SECRET.test(text)) return text;
  let out = redactUrl(text);
  for (const [re, fn] of TEXT_RULES) out = out.replace(re, fn);
  return out;
}

const SECRET_KEY = /(?:password|passwd|pwd|secret|token|api[_-]?key)$/i;
// poolctl's own session identity (backend_start, query_start, user@host): evidence, not secrets.
const IDENTITY_KEY = /^(?:session|query)_?token$/i;
const SECRET_FLAG = /^--?[\w-]*(?:password|passwd|pwd|secret|token|api-key)$/i;

/**
 * Applies `redactText` to every string in an event, and hides the whole value of fields named
 * like a secret (`password`, `token`, `rolpassword`, …) and the argument after a secret flag in
 * an argv array (`['--password', 'x']`). Any record: the writer redacts what it is given, typed
 * or not.
 */
export function redactEvent<T extends { type: string }>(event: T): T {
  return redactValue(event) as T;
}

/** `redactEvent` for any value: strings, arrays and plain objects, recursively. */
export function redactValue(v: unknown): unknown {
  if (typeof v === 'string') return redactText(v);
  if (Array.isArray(v)) {
    return v.map((item, i) => {
      const prev: unknown = v[i - 1];
      if (typeof item === 'string' && typeof prev === 'string' && SECRET_FLAG.test(prev)) {
        return MASK;
      }
      return redactValue(item);
    });
  }
  if (v !== null && typeof v === 'object' && !(v instanceof Date)) {
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, val] of Object.entries(v)) {
      out[k] =
        typeof val === 'string' && val !== '' && SECRET_KEY.test(k) && !IDENTITY_KEY.test(k)
          ? MASK
          : redactValue(val);
    }
    return out;
  }
  return v;
}
