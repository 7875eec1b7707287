// Placeholder until the command lands.
import type { Command } from '../command';

export const runCommand: Command = {
  spec: { name: 'run', summary: 'not implemented yet', usage: 'ddb2os run', flags: {}, examples: [] },
  run: async () => {
    throw new Error('ddb2os run is not implemented yet');
  },
};
