// The local runtime: real etcd processes on this machine, used by `etcd-robustness run --local` and by
// the integration tests.
export { etcdBinaries, kubeBinaries, packageRoot, BinaryNotFoundError } from './binaries.ts';
export type { EtcdBinaries, EtcdSeries, KubeBinaries } from './binaries.ts';
export { etcdClientTlsFlags, etcdMemberFlags, LocalEtcdCluster, LocalEtcdMember, EtcdStartError } from './etcd-cluster.ts';
export { etcdFlagName, etcdFlagProblem, LocalMemberRuntime, withEtcdFlags } from './runtime.ts';
export type { LocalClientTlsFiles, LocalClusterOptions, MemberAddresses, MemberStart } from './etcd-cluster.ts';
export { ManagedProcess, logTail } from './process.ts';
export type { ProcessExit, ProcessOptions } from './process.ts';
export { freeLoopbackPorts } from './ports.ts';
export { LocalWitness } from './witness-process.ts';
export type { LocalWitnessOptions } from './witness-process.ts';
export { launcherBinary, walCommitBinary } from './binaries.ts';
export { commitSurvivorLog, WalCommitError } from './wal-commit.ts';
export type { CommitSurvivorLogOptions, WalCommitResult } from './wal-commit.ts';
export { claimFolder, createScratch, FolderBusyError, formatBytes, parseScratchName, reclaimScratch, removeScratch, scratchParent, ScratchKindError } from './scratch.ts';
export type { ReclaimedFolder, ReclaimOptions, ReclaimResult, ScratchOwner } from './scratch.ts';
