/**
 * OpenSearch's rules for an index (or alias) name. The mapping, the workflow
 * input, a segment message and the CLI all check a name against these before
 * any document is sent, so a typo fails the run once instead of every
 * document failing on its own with invalid_index_name_exception.
 */

/** Why OpenSearch would refuse `name` as an index name ("must be lowercase"), or undefined when it is a valid one. */
export function indexNameProblem(name: string): string | undefined {
  if (name !== name.toLowerCase()) return 'must be lowercase';
  if (/[\\/*?"<>| ,#:]/.test(name)) return 'must not contain \\ / * ? " < > | , # : or spaces';
  if (/^[-_+]/.test(name)) return 'must not start with -, _ or +';
  if (name === '.' || name === '..') return 'must not be . or ..';
  if (new TextEncoder().encode(name).length > 255) return 'must be at most 255 bytes long';
  return undefined;
}
