// Probes: clients that drive etcd and record every operation and watch response into a history.
export { HistoryRecorder, monotonicNs } from './recorder.ts';
export type { Clock, InvocationSink, OperationSink } from './recorder.ts';
export { RecordingClient, recordingEtcdClient, isDefiniteError } from './recording-client.ts';
export type { Outcome, RecordingClientOptions } from './recording-client.ts';
export { WatchRecorder, watchEventsFromWire } from './watch-recorder.ts';
export { WatchProbe } from './watch-probe.ts';
export type { WatchProbeOptions } from './watch-probe.ts';
export { readHistoryDirectory } from './history-segment-reader.ts';
export { HistoryDirectoryError } from './history-segments.ts';
export { HistoryFileWriter, HistoryWriteError } from './history-writer.ts';
export { builtInProfiles, resolveProfile, kindsOf } from './profiles.ts';
export { actionFor, etcdActions, kubernetesActions, KeyPool, kindPicker, newClientMemory, remember, runClient, UniqueValues } from './traffic.ts';
export type { Action, ClientMemory, TrafficClient, TrafficEnvironment } from './traffic.ts';
export { RateLimiter } from './rate-limiter.ts';
export { runCompactions, runDefragmentation } from './maintenance.ts';
