import type { CommandSpec, ParsedArgs } from './args';
import type { CliIo } from './io';

/** One `ddb2os` subcommand: its flags and help, and what it does (returns the exit code). */
export interface Command {
  spec: CommandSpec;
  run(args: ParsedArgs, io: CliIo): Promise<number>;
}
