// Placeholder until the command lands.
import type { Command } from '../command';

export const startCommand: Command = {
  spec: { name: 'start', summary: 'not implemented yet', usage: 'ddb2os start', flags: {}, examples: [] },
  run: async () => {
    throw new Error('ddb2os start is not implemented yet');
  },
};
