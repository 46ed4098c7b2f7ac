// Which phase of the run is under way (the name of the current log group), so that an unexpected end can say
// where it happened.
import { UserError } from '../user-error.js';
let current = 'start-up';

export function setPhase(name: string): void {
  current = name;
}

export function currentPhase(): string {
  return current;
}

/** The run ended while a step still waited on something that can no longer happen (nothing left to wake it). */
export class StalledError extends UserError {
  constructor(phase: string) {
    super(`the run stopped during "${phase}" with an operation still waiting and nothing left to complete it (a lost connection that was never reported); nothing more was changed`);
    this.name = 'StalledError';
  }
}

/** A promise rejected with nobody to handle it: a bug, reported with the phase instead of a silent exit. */
export class UnhandledError extends UserError {
  constructor(phase: string, reason: unknown) {
    super(`unexpected failure during "${phase}": ${reason instanceof Error ? reason.message : String(reason)}`, { cause: reason });
    this.name = 'UnhandledError';
  }
}

/**
 * Runs `work` so that every way it can end becomes a result or an error: a drained event loop (Node would otherwise
 * exit with status 13 and no message) and an unhandled rejection both reject with an error naming the phase.
 */
export async function guarded<T>(work: () => Promise<T>): Promise<T> {
  let onBeforeExit: () => void = () => undefined;
  let onRejection: (reason: unknown) => void = () => undefined;
  const interrupted = new Promise<never>((_, reject) => {
    onBeforeExit = () => reject(new StalledError(currentPhase()));
    onRejection = (reason) => reject(new UnhandledError(currentPhase(), reason));
  });
  process.once('beforeExit', onBeforeExit);
  process.on('unhandledRejection', onRejection);
  try {
    return await Promise.race([work(), interrupted]);
  } finally {
    process.off('beforeExit', onBeforeExit);
    process.off('unhandledRejection', onRejection);
  }
}
