// Placeholder until the command lands.
import type { Command } from '../command';

export const planCommand: Command = {
  spec: { name: 'plan', summary: 'not implemented yet', usage: 'ddb2os plan', flags: {}, examples: [] },
  run: async () => {
    throw new Error('ddb2os plan is not implemented yet');
  },
};
