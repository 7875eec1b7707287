import { BackfillError } from '../pipeline/errors';

/** An error a person fixes by changing the command line: printed as one line, exit code 2. */
export class UsageError extends BackfillError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** Exit codes: 0 success, 1 the operation failed, 2 bad usage, 130 interrupted (Ctrl-C). */
export const EXIT = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;
