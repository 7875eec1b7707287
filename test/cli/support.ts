/** Runs `ddb2os …` in process with captured output, as a user would see it. */
import { PassThrough } from 'node:stream';
import type { CliIo } from '../../cli/io';
import { main } from '../../cli/main';
import { dynamodbEndpoint, engineFlags } from '../support/engines';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  env?: NodeJS.ProcessEnv;
  signal?: AbortSignal;
  tty?: boolean;
  /** Sees stderr as it is written (e.g. to interrupt a run at a given moment). */
  onStderr?: (text: string) => void;
}

export async function runCli(argv: string[], options: RunOptions = {}): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString();
  });
  stderr.on('data', (chunk: Buffer) => {
    err += chunk.toString();
    options.onStderr?.(chunk.toString());
  });
  const io: CliIo = {
    stdout: Object.assign(stdout, { isTTY: options.tty ?? false, columns: 160 }),
    stderr,
    env: options.env ?? process.env,
    signal: options.signal ?? new AbortController().signal,
  };
  const code = await main(argv, io);
  return { code, stdout: out, stderr: err };
}

/** The last line of stdout parsed as JSON (what `--json` promises). */
export function lastJsonLine(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1] as string) as Record<string, unknown>;
}

/** `ddb2os verify --table TABLE` on the test engines, then `flags` (--index or --mapping, …). */
export function runVerify(table: string, flags: string[], options: RunOptions = {}): Promise<CliResult> {
  return runCli(['verify', '--table', table, ...engineFlags(), ...flags], options);
}

/** `ddb2os plan --table TABLE --json` on the test DynamoDB (plan reads only the table), then `flags`. */
export function runPlanJson(table: string, flags: string[]): Promise<CliResult> {
  return runCli(['plan', '--table', table, '--dynamodb-endpoint', dynamodbEndpoint(), ...flags, '--json']);
}
