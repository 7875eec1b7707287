/**
 * The workflow bucket's layout. The construct scopes IAM and lifecycle rules
 * to these prefixes and the handlers write under them, so both read them
 * from here. The state machine's ResultWriter names `map-results` in
 * statemachines/backfill.asl.json; a test holds it to `mapResults`.
 */
export const BUCKET_PREFIXES = {
  /** Segment lists too large for the state, written by the plan function, read by the Map's item reader. */
  plans: 'plans/',
  /** Results of the Distributed Map (ResultWriter). */
  mapResults: 'map-results/',
  /** Items that could not become documents, with their reasons (see pipeline/dead-letter/dead-letter.ts). */
  deadLetters: 'dead-letter/',
} as const;

/** Where the planner puts a run's segment list (a JSON array of segment numbers). */
export function planListKey(runId: string): string {
  return `${BUCKET_PREFIXES.plans}${runId}/segments.json`;
}
