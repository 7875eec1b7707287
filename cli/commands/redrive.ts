// Placeholder until the command lands.
import type { Command } from '../command';

export const redriveCommand: Command = {
  spec: { name: 'redrive', summary: 'not implemented yet', usage: 'ddb2os redrive', flags: {}, examples: [] },
  run: async () => {
    throw new Error('ddb2os redrive is not implemented yet');
  },
};
