// Probes: clients that drive etcd and record every operation into a history.
export { HistoryRecorder, monotonicNs } from './recorder.ts';
export type { Clock, OperationSink } from './recorder.ts';
export { RecordingClient, recordingEtcdClient, isDefiniteError } from './recording-client.ts';
export type { Outcome } from './recording-client.ts';
export { WatchRecorder, watchEventsFromWire } from './watch-recorder.ts';
