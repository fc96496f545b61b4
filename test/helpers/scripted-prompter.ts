import type { Choice, Prompter } from '../../src/io/prompter.js';

type Answer = boolean | string;

/**
 * A Prompter for tests: answers are given in order, each with the start of the question it
 * expects. An unexpected question throws; `verify()` fails when answers were left unused.
 */
export class ScriptedPrompter implements Prompter {
  readonly asked: string[] = [];
  private readonly script: { expect: string; answer: Answer }[];

  constructor(script: { expect: string; answer: Answer }[]) {
    this.script = [...script];
  }

  private next(message: string): Answer {
    this.asked.push(message);
    const entry = this.script.shift();
    if (!entry) throw new Error(`unexpected prompt: ${message}`);
    if (!message.startsWith(entry.expect)) {
      throw new Error(`prompt "${message}" does not match the scripted "${entry.expect}"`);
    }
    return entry.answer;
  }

  async confirm(message: string): Promise<boolean> {
    return Boolean(this.next(message));
  }

  async select<T extends string>(message: string, choices: Choice<T>[]): Promise<T> {
    const answer = String(this.next(message));
    if (!choices.some((c) => c.value === answer)) {
      throw new Error(`scripted answer "${answer}" is not a choice of "${message}"`);
    }
    return answer as T;
  }

  async input(message: string): Promise<string> {
    return String(this.next(message));
  }

  async typedConfirm(message: string, expected: string): Promise<boolean> {
    return String(this.next(message)) === expected;
  }

  verify(): void {
    if (this.script.length > 0) {
      throw new Error(`unused scripted answers: ${this.script.map((s) => s.expect).join(', ')}`);
    }
  }
}
