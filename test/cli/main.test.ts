import { describe, expect, it } from 'vitest';
import { runCli } from './support';

const COMMAND_NAMES = ['demo', 'run', 'resync', 'verify', 'plan', 'start', 'status', 'redrive', 'replay'];

describe('ddb2os (the command line)', () => {
  it('lists every command with no arguments and exits 2', async () => {
    const result = await runCli([]);

    expect(result.code).toBe(2);
    for (const command of COMMAND_NAMES) {
      expect(result.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
  });

  it('prints help with exit 0 for --help', async () => {
    const result = await runCli(['--help']);

    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: ddb2os <command> [options]');
  });

  it('rejects an unknown command with one line naming it, exit 2', async () => {
    const result = await runCli(['backfil']);

    expect(result.code).toBe(2);
    expect(result.stderr).toBe(
      'ddb2os: unknown command "backfil" (commands: demo, run, resync, verify, plan, start, status, redrive, replay)\n',
    );
  });

  it('rejects an unknown flag of a command with one line naming the flag, exit 2', async () => {
    const result = await runCli(['run', '--tabel', 'orders']);

    expect(result.code).toBe(2);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain("Unknown option '--tabel'");
  });

  it('gives every command a --help with usage and examples', async () => {
    for (const command of COMMAND_NAMES) {
      const result = await runCli([command, '--help']);

      expect(result.code, command).toBe(0);
      expect(result.stdout, command).toContain(`Usage: ddb2os ${command}`);
      expect(result.stdout, command).toMatch(/Examples:\n {2}ddb2os /);
    }
  });
});
