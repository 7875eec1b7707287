/**
 * Argument parsing on top of node:util parseArgs: strict (an unknown flag is an
 * error that names it), typed numeric flags with ranges, and `--help`.
 */
import { parseArgs } from 'node:util';
import { UsageError } from './cli-error';

export interface FlagSpec {
  type: 'string' | 'boolean';
  short?: string;
  /** For the help text: what the value is, e.g. `N` or `URL`. */
  value?: string;
  description: string;
  multiple?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  flags: Record<string, FlagSpec>;
  examples: string[];
  /** Extra paragraphs for --help. */
  details?: string;
  positionals?: { name: string; required: boolean }[];
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  help: boolean;
}

export function parseCommandArgs(spec: CommandSpec, argv: string[]): ParsedArgs {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
  };
  for (const [name, flag] of Object.entries(spec.flags)) {
    options[name] = {
      type: flag.type,
      ...(flag.short ? { short: flag.short } : {}),
      ...(flag.multiple ? { multiple: true } : {}),
    };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (error) {
    throw new UsageError(
      `${(error as Error).message.replace(/\. To specify.*$/s, '')} (see \`ddb2os ${spec.name} --help\`)`,
    );
  }
  const values = parsed.values as ParsedArgs['values'];
  const help = values.help === true;
  const allowed = spec.positionals ?? [];
  if (!help) {
    if (parsed.positionals.length > allowed.length) {
      throw new UsageError(
        `unexpected argument "${parsed.positionals[allowed.length]}" (see \`ddb2os ${spec.name} --help\`)`,
      );
    }
    allowed.forEach((positional, i) => {
      if (positional.required && parsed.positionals[i] === undefined) {
        throw new UsageError(`missing ${positional.name} (usage: ${spec.usage})`);
      }
    });
  }
  return { values, positionals: parsed.positionals, help };
}

export function requiredString(args: ParsedArgs, name: string, command: string): string {
  const value = args.values[name];
  if (typeof value !== 'string' || value.trim() === '') {
    throw new UsageError(`--${name} is required (see \`ddb2os ${command} --help\`)`);
  }
  return value;
}

export function optionalString(args: ParsedArgs, name: string): string | undefined {
  const value = args.values[name];
  return typeof value === 'string' ? value : undefined;
}

/** An integer flag within [min, max], or undefined when absent. */
export function optionalInteger(
  args: ParsedArgs,
  name: string,
  min: number,
  max: number,
): number | undefined {
  const raw = args.values[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === 'string' && /^-?\d+$/.test(raw.trim()) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be a whole number from ${min} to ${max}, got "${String(raw)}"`);
  }
  return value;
}

/** A positive number flag (decimals allowed), or undefined when absent. */
export function optionalPositiveNumber(args: ParsedArgs, name: string): number | undefined {
  const raw = args.values[name];
  if (raw === undefined) return undefined;
  const value = typeof raw === 'string' ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value) || value <= 0) {
    throw new UsageError(`--${name} must be a positive number, got "${String(raw)}"`);
  }
  return value;
}

export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.flags).map(([name, flag]) => {
    const left = `  ${flag.short ? `-${flag.short}, ` : ''}--${name}${flag.value ? ` ${flag.value}` : ''}`;
    return `${left.padEnd(34)} ${flag.description}`;
  });
  rows.push(`${'  -h, --help'.padEnd(34)} show this help`);
  return [
    `ddb2os ${spec.name}: ${spec.summary}`,
    '',
    `Usage: ${spec.usage}`,
    '',
    'Options:',
    ...rows,
    ...(spec.details ? ['', spec.details] : []),
    '',
    'Examples:',
    ...spec.examples.map((example) => `  ${example}`),
    '',
  ].join('\n');
}
