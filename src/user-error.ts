// The base of every failure a user can act on (bad input, an unreachable registry, a full disk, a refused key):
// shown as its message alone, without a stack trace. Anything else that escapes is a bug and shows its stack.
export class UserError extends Error {}

/** An input that a step needs and that is missing or wrong, found only once the step runs. */
export class StageInputError extends UserError {
  constructor(
    readonly input: string,
    message: string,
  ) {
    super(`${input}: ${message}`);
    this.name = 'StageInputError';
  }
}
