// Fault injection. Today: the gofail failpoint client. The fault agent, catalog and schedules come with
// the faults issue.
export { GofailClient, FailpointError } from './gofail.ts';
export type { FailpointState } from './gofail.ts';
