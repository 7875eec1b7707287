/**
 * Transitional: `cli/commands/plan.ts` still imports the cloud helpers from
 * `../cloud`, and another branch is editing that file. Once it imports from
 * `../cloud/aws` and `../cloud/errors` instead, delete this file.
 */
export { AWS_DETAILS, AWS_FLAGS, type CloudDeps, resolveTarget, withDefaults } from './aws';
export { CloudError, errorName, explainAwsError } from './errors';
