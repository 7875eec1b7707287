// Placeholder until the command lands.
import type { Command } from '../command';

export const demoCommand: Command = {
  spec: { name: 'demo', summary: 'not implemented yet', usage: 'ddb2os demo', flags: {}, examples: [] },
  run: async () => {
    throw new Error('ddb2os demo is not implemented yet');
  },
};
