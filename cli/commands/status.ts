// Placeholder until the command lands.
import type { Command } from '../command';

export const statusCommand: Command = {
  spec: { name: 'status', summary: 'not implemented yet', usage: 'ddb2os status', flags: {}, examples: [] },
  run: async () => {
    throw new Error('ddb2os status is not implemented yet');
  },
};
