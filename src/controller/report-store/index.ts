/**
 * Where a finished run's report directory (history/ segments, verdict.json, report.html) is kept so a
 * user can fetch it later (`etcd-robustness report RUN`): a size-bounded ConfigMap per run
 * (configmap-store.ts), or a folder on a volume (volume-store.ts). Both keep each file gzip-compressed on
 * its own, with an index (index.json, stored-report.ts) that lists every file with its size and SHA-256,
 * so a fetch restores the files byte for byte and notices damage.
 */
export { buildReportConfigMap, ConfigMapReportStore, defaultConfigMapReportMaxBytes } from './configmap-store.ts';
export type { ConfigMapReportStoreOptions } from './configmap-store.ts';
export { configMapReportName, reportAnnotations, reportLabels, reportRunLabelValue } from './naming.ts';
export { ReportStoreError } from './stored-report.ts';
export type { ReportIndex, ReportIndexEntry, ReportRun, ReportStore } from './stored-report.ts';
export { VolumeReportStore } from './volume-store.ts';
export type { VolumeReportStoreOptions } from './volume-store.ts';
