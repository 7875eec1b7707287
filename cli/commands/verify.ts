// Placeholder until the command lands.
import type { Command } from '../command';

export const verifyCommand: Command = {
  spec: { name: 'verify', summary: 'not implemented yet', usage: 'ddb2os verify', flags: {}, examples: [] },
  run: async () => {
    throw new Error('ddb2os verify is not implemented yet');
  },
};
