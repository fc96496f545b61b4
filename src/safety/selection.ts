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
  for (const session of candidates) {
    const reason =
      session.pid === rules.ownSessionId
        ? "poolctl's own session"
        : protection.users.includes(session.user)
          ? `protected user "${session.user}" (--protect-user)`
          : protection.applications.includes(session.application)
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
