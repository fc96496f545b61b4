import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/**
 * A real pseudo-terminal for end-to-end tests: the command runs in a detached tmux session on
 * its own server socket; tests read the screen with capture-pane and type with send-keys.
 */
export class TmuxSession {
  readonly socket = `poolctl-test-${randomBytes(4).toString('hex')}`;
  private readonly name = 'main';

  constructor(command: string, opts: { width?: number; height?: number } = {}) {
    this.tmux(
      'new-session',
      '-d',
      '-s',
      this.name,
      '-x',
      String(opts.width ?? 200),
      '-y',
      String(opts.height ?? 80),
      command,
    );
  }

  private tmux(...args: string[]): string {
    return execFileSync('tmux', ['-L', this.socket, ...args], { encoding: 'utf8' });
  }

  /** The whole scrollback and screen as plain text. */
  screen(): string {
    return this.tmux('capture-pane', '-p', '-J', '-S', '-', '-t', this.name);
  }

  /** Waits until the screen matches, or fails with the screen in the message. */
  async waitFor(pattern: RegExp | string, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const text = this.screen();
      if (typeof pattern === 'string' ? text.includes(pattern) : pattern.test(text)) return text;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${String(pattern)}; screen:\n${text}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Types keys as tmux names them: 'Enter', 'y', 'Down', 'C-c'. */
  keys(...keys: string[]): void {
    this.tmux('send-keys', '-t', this.name, ...keys);
  }

  kill(): void {
    try {
      this.tmux('kill-server');
    } catch {
      // already gone
    }
  }
}

/** Quotes a value for the POSIX shell tmux runs the command with. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}
