import type { Writable } from 'node:stream';
import yoctoSpinner from 'yocto-spinner';

export interface Spinner {
  stop(): void;
}

/** A spinner on stderr while a step waits; callers start one only when stderr is a terminal. */
export function startSpinner(stream: Writable, text: string): Spinner {
  const spinner = yoctoSpinner({ text, stream: stream as NodeJS.WriteStream }).start();
  return {
    stop() {
      spinner.stop();
    },
  };
}
