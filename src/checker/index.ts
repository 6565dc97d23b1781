// The checker: linearizability and watch guarantees of etcd histories, offline and live.
export { checkHistory, checkLinearizability, defaultUnknownHorizonMs, modelOptionsFor } from './check.ts';
export type { CheckOptions } from './check.ts';
export { LiveChecker } from './live.ts';
export { defaultResolveWindowMs } from './live-options.ts';
export type { LiveCheckerOptions, LiveStats } from './live-options.ts';
export { HistoryFormatError } from './history-lines.ts';
export { HistoryParser, parseHistory } from './parse.ts';
export { serializeHistory, serializeInvokeLine } from './serialize.ts';
export type { LineOptions } from './parse.ts';
export { initialState, step, summarize } from './model.ts';
export type { ModelOptions, ModelState } from './model.ts';
export { checkHistoryStream, HistoryChangedError } from './stream.ts';
export type { HistoryPass, HistorySource, PassOptions, StreamCheckOptions, StreamCheckReport } from './stream.ts';
export { checkWatches } from './watch.ts';
export type { CommittedRevision, WatchCheckInput } from './watch.ts';
export type * from './result.ts';
export { LiveWatchChecker } from './watch-live.ts';
export type { LiveWatchViolation } from './watch-live.ts';
