/**
 * How stored reports are named and labelled in Kubernetes: ConfigMap names and label values kept within
 * the API's length limits (shortened with a hash), and the label and annotation keys. Pure.
 */
import { createHash } from 'node:crypto';

export const reportLabels = {
  run: 'etcd.robustness.io/run',
  runNumber: 'etcd.robustness.io/run-number',
} as const;
export const reportAnnotations = {
  /** The full RobustnessRun name (the run label is shortened past 63 characters). */
  run: 'etcd.robustness.io/run',
  /** What was left out, when the report did not fit. */
  truncated: 'etcd.robustness.io/report-truncated',
  /** The uid of the RobustnessRun that stored it (reports outlive their run; a new run may reuse the name). */
  runUid: 'etcd.robustness.io/run-uid',
} as const;

export const maxNameLength = 253;
const maxLabelValueLength = 63;

function hashOf(text: string, length: number): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

/** Cuts `text` to at most `length` characters that do not end in `-`, `.` or `_` (names and label values end alphanumeric). */
function cut(text: string, length: number): string {
  return text.slice(0, length).replace(/[-._]+$/, '');
}

/**
 * The ConfigMap name of run `runNumber` of RobustnessRun `runName`: `<run>-report-<n>`, or, past 253
 * characters, the run name cut short with a hash of the full name (stable, and distinct for runs whose
 * names share the kept prefix). A RobustnessRun name is a DNS subdomain, so the result is one too.
 */
export function configMapReportName(runName: string, runNumber: number): string {
  const suffix = `-report-${runNumber}`;
  const full = `${runName}${suffix}`;
  if (full.length <= maxNameLength) return full;
  const hash = hashOf(runName, 10);
  return `${cut(runName, maxNameLength - suffix.length - hash.length - 1)}-${hash}${suffix}`;
}

/** The run label's value: the run name, or past 63 characters its start and a hash of the full name. */
export function reportRunLabelValue(runName: string): string {
  if (runName.length <= maxLabelValueLength) return runName;
  const hash = hashOf(runName, 10);
  return `${cut(runName, maxLabelValueLength - hash.length - 1)}-${hash}`;
}
