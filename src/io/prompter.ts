import type { IO } from './io.js';
import type { Transcript } from '../transcript/types.js';

export interface Choice<T extends string> {
  value: T;
  name: string;
  description?: string;
}

/**
 * Every question poolctl asks goes through this narrow interface. The wizard never talks to the
 * terminal; tests hand it a scripted prompter that fails on unexpected or unused questions.
 */
export interface Prompter {
  confirm(message: string, defaultAnswer: boolean): Promise<boolean>;
  select<T extends string>(message: string, choices: Choice<T>[], defaultValue?: T): Promise<T>;
  input(message: string, defaultValue?: string): Promise<string>;
  /** The operator must type `expected` exactly (e.g. the number of sessions to kill). */
  typedConfirm(message: string, expected: string): Promise<boolean>;
  /** The same prompter, its questions recorded as asked for this step (the approval of an action). */
  forStep?(step: string): Prompter;
}

/** Prompts drawn by @inquirer/prompts on stderr, read from the IO's stdin; loaded on first use. */
export class InquirerPrompter implements Prompter {
  constructor(private readonly io: IO) {}

  private context() {
    return { input: this.io.in, output: this.io.err, clearPromptOnDone: false };
  }

  async confirm(message: string, defaultAnswer: boolean): Promise<boolean> {
    const { confirm } = await import('@inquirer/prompts');
    return confirm({ message, default: defaultAnswer }, this.context());
  }

  async select<T extends string>(message: string, choices: Choice<T>[], defaultValue?: T) {
    const { select } = await import('@inquirer/prompts');
    return select<T>({ message, choices, default: defaultValue, loop: false }, this.context());
  }

  async input(message: string, defaultValue?: string): Promise<string> {
    const { input } = await import('@inquirer/prompts');
    return input({ message, default: defaultValue }, this.context());
  }

  /**
   * Anything but the count, `n` or nothing — a `y` from habit, a typo — asks again and says how
   * to answer: a half-awake operator who typed `y` meant yes, and must neither kill by it nor be
   * declined without a word.
   */
  async typedConfirm(message: string, expected: string): Promise<boolean> {
    const { input } = await import('@inquirer/prompts');
    const answer = (
      await input(
        {
          message: `${message} Type ${expected} to confirm, or n / empty to decline:`,
          validate: (value) =>
            isDecline(value) ||
            value.trim() === expected ||
            `type ${expected} to confirm, or n / empty to decline`,
        },
        this.context(),
      )
    ).trim();
    if (answer === expected) return true;
    this.io.err.write('Declined: nothing was changed.\n');
    return false;
  }
}

function isDecline(value: string): boolean {
  return /^(n|no)?$/i.test(value.trim());
}

/**
 * The prompter that records every question the operator answers, with the answer, as a `prompt`
 * event (answeredBy: 'operator'), after it is answered and before the caller acts on it: the
 * wizard asks and the record follows, with no hand-written record at each question. Answers
 * decided without asking (--yes, --dry-run, no terminal) are recorded where they are decided
 * (src/wizard/mitigation.ts, recordDecision). A question ended by Ctrl-C has no answer and no
 * record.
 */
export function recordingPrompter(
  prompter: Prompter,
  transcript: Pick<Transcript, 'append'>,
  step?: string,
): Prompter {
  const record = (question: string, answer: string) =>
    transcript.append({
      type: 'prompt',
      question,
      answer,
      answeredBy: 'operator',
      ...(step !== undefined ? { step } : {}),
    });
  const yesNo = (answer: boolean) => (answer ? 'yes' : 'no');
  return {
    async confirm(message, defaultAnswer) {
      const answer = await prompter.confirm(message, defaultAnswer);
      record(message, yesNo(answer));
      return answer;
    },
    async select(message, choices, defaultValue) {
      const answer = await prompter.select(message, choices, defaultValue);
      record(message, answer);
      return answer;
    },
    async input(message, defaultValue) {
      const answer = await prompter.input(message, defaultValue);
      record(message, answer);
      return answer;
    },
    async typedConfirm(message, expected) {
      const answer = await prompter.typedConfirm(message, expected);
      record(message, yesNo(answer));
      return answer;
    },
    forStep: (id) => recordingPrompter(prompter, transcript, id),
  };
}
