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
 * execution time; this pass is what the operator sees before confirming.
 */
export function selectVictims(candidates: Session[], rules: SelectionRules): Selection {
  const victims: Session[] = [];
  const spared: SparedSession[] = [];
  const { protection } = rules;
  // Upper and lower case alike, as MySQL's re-check compares names (its collation): protecting
  // "APP" spares "app" too, erring on the side of sparing.
  const users = new Set(protection.users.map(folded));
  const applications = new Set(protection.applications.map(folded));
  for (const session of candidates) {
    const reason =
      session.pid === rules.ownSessionId
        ? "poolctl's own session"
        : users.has(folded(session.user))
          ? `protected user "${session.user}" (--protect-user)`
          : applications.has(folded(session.application))
            ? `protected application "${session.application}" (--protect-app)`
            : session.superuser && !protection.includeSuperusers
              ? `superuser "${session.user}" (--include-superusers to include)`
              : undefined;
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

function folded(name: string): string {
  return name.toLowerCase();
}
