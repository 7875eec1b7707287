// Placeholder: the real handler lands with the handlers issue.
export const handler = async (): Promise<never> => {
  throw new Error('handlers/summarize.ts is not implemented yet');
};
