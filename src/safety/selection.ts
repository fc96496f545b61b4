import type { Protection, Session } from '../targets/types.js';

export interface SparedSession {
  session: Session;
  reason: string;
}

/** The sessions an action will touch, and those it leaves alone with the reason. */
export interface Selection {
  victims: Session[];
  spared: SparedSession[];
}

export interface SelectionRules {
  ownSessionId: number;
  protection: Protection;
  /** `--max-victims`: at most this many in one step; the oldest go first. */
  maxVictims?: number;
}

/**
 * Applies the never-touch rules to a candidate list. The kill statement applies them again at
 * execution time; this pass is what the operator sees before confirming. A rule that cannot be
 * evaluated for a session (its application or its superuser status unknown) spares it: never a
 * kill on a guess.
 */
export function selectVictims(candidates: Session[], rules: SelectionRules): Selection {
  const victims: Session[] = [];
  const spared: SparedSession[] = [];
  for (const session of candidates) {
    const reason = sparedBecause(session, rules);
    if (reason) spared.push({ session, reason });
    else victims.push(session);
  }
  if (rules.maxVictims !== undefined && victims.length > rules.maxVictims) {
    for (const session of victims.splice(rules.maxVictims)) {
      spared.push({ session, reason: `over --max-victims ${rules.maxVictims}` });
    }
  }
  return { victims, spared };
}

/** Why the rules spare this session, or undefined when it may be touched. */
function sparedBecause(session: Session, rules: SelectionRules): string | undefined {
  const { protection } = rules;
  // Upper and lower case alike, as MySQL's re-check compares names (its collation): protecting
  // "APP" spares "app" too, erring on the side of sparing.
  const among = (names: readonly string[] | undefined, name: string) =>
    (names ?? []).some((n) => folded(n) === folded(name));
  if (session.pid === rules.ownSessionId) return "poolctl's own session";
  if (among(protection.users, session.user)) {
    return `protected user "${session.user}" (--protect-user)`;
  }
  if (session.applicationUnknown === undefined) {
    if (among(protection.applications, session.application)) {
      return `protected application "${session.application}" (--protect-app)`;
    }
    if (among(protection.defaultApplications, session.application)) {
      return `monitoring "${session.application}" (protect_apps_default)`;
    }
  } else if (protection.applications.length > 0) {
    // An explicit --protect-app is a promise: where it cannot be checked, nobody is killed on a
    // guess. The monitoring list is a courtesy and does not block the step.
    return `${session.applicationUnknown}; --protect-app ${protection.applications.join(', ')} cannot be checked`;
  }
  if (!protection.includeSuperusers) {
    if (session.superuser) return `superuser "${session.user}" (--include-superusers to include)`;
    if (session.superuserUnknown !== undefined) return session.superuserUnknown;
  }
  return undefined;
}

function folded(name: string): string {
  return name.toLowerCase();
}
