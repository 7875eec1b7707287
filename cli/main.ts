/**
 * `ddb2os`: run the backfill workflow on one machine (`demo`, `run`, `resync`, `verify`)
 * or drive the deployed one (`start`, `status`, `redrive`, `plan`); `replay`
 * does either.
 */
import { describeError } from '../pipeline/errors';
import { helpText, parseCommandArgs } from './args';
import { EXIT, UsageError } from './cli-error';
import type { Command } from './command';
import { type CliIo, processIo } from './io';

type Loader = () => Promise<Command>;

/** Commands load lazily: `ddb2os status` need not load the local engines' code. */
const COMMANDS: Record<string, { summary: string; load: Loader }> = {
  demo: {
    summary: 'run the whole mission on local engines: backfill, live changes, search',
    load: async () => (await import('./commands/demo')).demoCommand,
  },
  run: {
    summary: 'backfill a table into an index on this machine, then optionally follow its stream',
    load: async () => (await import('./commands/run')).runCommand,
  },
  resync: {
    summary: 'rebuild the index from the table while search keeps serving, then swap it in',
    load: async () => (await import('./commands/resync')).resyncCommand,
  },
  verify: {
    summary: 'compare every item of a table with its document in the index',
    load: async () => (await import('./commands/verify')).verifyCommand,
  },
  plan: {
    summary: 'print the segment plan of a table and an estimate of read units, time and cost',
    load: async () => (await import('./commands/plan')).planCommand,
  },
  start: {
    summary: 'start the deployed workflow and follow its Map Run until it ends',
    load: async () => (await import('./commands/start')).startCommand,
  },
  status: {
    summary: 'show an execution of the deployed workflow and its Map Run',
    load: async () => (await import('./commands/status')).statusCommand,
  },
  redrive: {
    summary: 'rerun only the failed segments of a failed execution',
    load: async () => (await import('./commands/redrive')).redriveCommand,
  },
  replay: {
    summary: 'apply the stream batches the updater gave up on (failure queue or local folder)',
    load: async () => (await import('./commands/replay')).replayCommand,
  },
};

export function mainHelp(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  return [
    'ddb2os: put a DynamoDB table into OpenSearch and keep it there.',
    '',
    'Usage: ddb2os <command> [options]',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`),
    '',
    'Run `ddb2os <command> --help` for the options and examples of a command.',
    '',
  ].join('\n');
}

/** Runs one command line and returns the exit code. Errors become one line on stderr. */
export async function main(argv: string[], io?: CliIo): Promise<number> {
  const controller = new AbortController();
  const ownIo = io === undefined;
  const effectiveIo = io ?? processIo(controller.signal);
  let interrupts = 0;
  const onSignal = () => {
    interrupts += 1;
    if (interrupts === 1) {
      effectiveIo.stderr.write('\nddb2os: stopping after the current page (Ctrl-C again to quit at once)…\n');
      controller.abort(new Error('interrupted'));
    } else {
      process.exit(EXIT.interrupted);
    }
  };
  if (ownIo) {
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
  try {
    const [name, ...rest] = argv;
    if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
      effectiveIo.stdout.write(mainHelp());
      return name === undefined ? EXIT.usage : EXIT.ok;
    }
    if (name === '--version' || name === '-v') {
      effectiveIo.stdout.write('ddb2os 0.1.0\n');
      return EXIT.ok;
    }
    const entry = COMMANDS[name];
    if (!entry)
      throw new UsageError(`unknown command "${name}" (commands: ${Object.keys(COMMANDS).join(', ')})`);
    const command = await entry.load();
    const args = parseCommandArgs(command.spec, rest);
    if (args.help) {
      effectiveIo.stdout.write(helpText(command.spec));
      return EXIT.ok;
    }
    const code = await command.run(args, effectiveIo);
    return effectiveIo.signal.aborted && code !== EXIT.ok ? EXIT.interrupted : code;
  } catch (error) {
    if (error instanceof UsageError) {
      effectiveIo.stderr.write(`ddb2os: ${error.message}\n`);
      return EXIT.usage;
    }
    effectiveIo.stderr.write(`ddb2os: ${describeError(error)}\n`);
    if (effectiveIo.env.DDB2OS_DEBUG) effectiveIo.stderr.write(`${(error as Error).stack ?? ''}\n`);
    return effectiveIo.signal.aborted ? EXIT.interrupted : EXIT.failed;
  } finally {
    if (ownIo) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  }
}
