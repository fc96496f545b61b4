/**
 * While a drill holds sessions, Ctrl-C and SIGTERM are how it ends, not an interruption: the
 * process-wide handlers (cli.ts closes the transcript and exits 130 at once) step aside until the
 * drill has released its sessions. A second signal gives them back and re-raises it, so a release
 * that hangs can still be cut short.
 *
 * Returns the function that gives the signals back; call it once the sessions are released.
 */
export function takeOverStopSignals(onStop: (signal: NodeJS.Signals) => void): () => void {
  const signals = ['SIGINT', 'SIGTERM'] as const;
  const saved = new Map(signals.map((s) => [s, process.listeners(s)]));
  let stopped = false;
  let restored = false;

  const restore = (): void => {
    if (restored) return;
    restored = true;
    for (const s of signals) {
      process.off(s, handler);
      for (const listener of saved.get(s) ?? []) process.on(s, listener);
    }
  };
  const handler = (signal: NodeJS.Signals): void => {
    if (!stopped) {
      stopped = true;
      onStop(signal);
      return;
    }
    restore();
    process.kill(process.pid, signal);
  };

  for (const s of signals) {
    process.removeAllListeners(s);
    process.on(s, handler);
  }
  return restore;
}
