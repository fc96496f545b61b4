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
  if (session.pid === rules.ownSessionId) return "poolctl's own session";
  if (isAmong(protection.users, session.user)) return sparedWording.user(session.user);
  if (session.applicationUnknown === undefined) {
    if (isAmong(protection.applications, session.application)) {
      return sparedWording.application(session.application);
    }
    if (isAmong(protection.defaultApplications, session.application)) {
      return sparedWording.monitoring(session.application);
    }
  } else if (protection.applications.length > 0) {
    // An explicit --protect-app is a promise: where it cannot be checked, nobody is killed on a
    // guess. The monitoring list is a courtesy and does not block the step.
    return sparedWording.applicationUnknown(session.applicationUnknown, protection);
  }
  if (!protection.includeSuperusers) {
    if (session.superuser) return sparedWording.superuser(session.user);
    if (session.superuserUnknown !== undefined) return session.superuserUnknown;
  }
  return undefined;
}

/**
 * Whether `name` is among the protected `names`, upper and lower case alike: protecting "APP"
 * spares "app" too, erring on the side of sparing. Every engine's re-check at kill time compares
 * the same way (lower() on both sides), so the rule the operator confirmed is the rule applied.
 */
export function isAmong(names: readonly string[] | undefined, name: string): boolean {
  const folded = name.toLowerCase();
  return (names ?? []).some((n) => n.toLowerCase() === folded);
}

/**
 * The words for each protection rule, shared by the selection and every engine's re-check at kill
 * time: a session spared on screen and one spared at the kill read the same.
 */
export const sparedWording = {
  user: (user: string) => `protected user "${user}" (--protect-user)`,
  application: (application: string) => `protected application "${application}" (--protect-app)`,
  monitoring: (application: string) => `monitoring "${application}" (protect_apps_default)`,
  applicationUnknown: (why: string, protection: Pick<Protection, 'applications'>) =>
    `${why}; --protect-app ${protection.applications.join(', ')} cannot be checked`,
  superuser: (user: string) => `superuser "${user}" (--include-superusers to include)`,
};
