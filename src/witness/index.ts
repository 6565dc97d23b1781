// The HTTP witness process of two-node clusters (`etcd-robustness witness`): the record in a file,
// served with compare-and-swap. Not part of the controller: its client is src/controller/witness/store-http.ts.
export { parseWitnessFile, recordProblem, WitnessFileError, WitnessFileStore, witnessFileName } from './file-store.ts';
export {
  maxWitnessRequestBytes,
  parseWitnessWriteRequest,
  versionedJson,
  WitnessHttpError,
  WitnessServer,
} from './server.ts';
export type { ParsedWitnessWrite, WitnessServerOptions, WitnessWriteRequest } from './server.ts';
