// Command etcd-wal-commit marks every entry of a stopped etcd member's durable raft log as committed,
// so that a following `etcd --force-new-cluster` keeps them.
//
//	etcd-wal-commit --data-dir DIR [--dry-run]
//
// Why: `--force-new-cluster` (etcd's bootstrapWALFromSnapshot) discards the WAL entries past
// max(HardState.Commit, the backend's consistent index). In a two-voter cluster every committed entry,
// hence every acknowledged write, is in the follower's durable log (a follower fsyncs before it acks),
// but the follower learns the commit index only from a later message of the leader. Failing over onto
// such a follower with `--force-new-cluster` alone loses acknowledged writes. Raft never truncates a
// committed entry, so the survivor's log holds the whole committed prefix; entries beyond it were never
// acknowledged, and an unacknowledged write may take effect. This tool appends a HardState with
// Commit = the last entry's index (Term and Vote unchanged) to the WAL and syncs it.
//
// Use it only on the one survivor, right before `--force-new-cluster`: restarting a member of a
// running cluster normally after this tool could commit entries the cluster replaced.
//
// It reads the WAL the way etcd's bootstrap does (wal.ValidSnapshotEntries, then the newest snapshot
// file that the WAL knows, snap.Snapshotter.LoadNewestAvailable, then wal.Open at that snapshot and
// ReadAll, repairing a torn write at the tail once, as etcd does). wal.Open takes the WAL files' locks:
// a WAL that a running etcd holds is refused, never written.
//
// Output: one JSON line {"commitBefore":N,"commitAfter":M,"lastIndex":L} on stdout (with --dry-run,
// commitAfter is the commit index the tool would write, and nothing is written). Errors: one line on
// stderr naming the path, exit status 1 (2 for usage errors).
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"go.etcd.io/etcd/client/pkg/v3/fileutil"
	"go.etcd.io/etcd/server/v3/etcdserver/api/snap"
	"go.etcd.io/etcd/server/v3/storage/wal"
	"go.etcd.io/etcd/server/v3/storage/wal/walpb"
	"go.etcd.io/raft/v3/raftpb"
	"go.uber.org/zap"
)

// result is the tool's output line.
type result struct {
	CommitBefore uint64 `json:"commitBefore"`
	CommitAfter  uint64 `json:"commitAfter"`
	LastIndex    uint64 `json:"lastIndex"`
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	flags := flag.NewFlagSet("etcd-wal-commit", flag.ContinueOnError)
	flags.SetOutput(stderr)
	flags.Usage = func() {
		fmt.Fprintln(stderr, "usage: etcd-wal-commit --data-dir DIR [--dry-run]")
		flags.PrintDefaults()
	}
	dataDir := flags.String("data-dir", "", "the stopped etcd member's data dir (holding member/wal and member/snap)")
	dryRun := flags.Bool("dry-run", false, "read and report, write nothing")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if *dataDir == "" || flags.NArg() > 0 {
		flags.Usage()
		return 2
	}
	res, err := commitLog(*dataDir, *dryRun, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "etcd-wal-commit: %v\n", err)
		return 1
	}
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(stderr, "etcd-wal-commit: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(line))
	return 0
}

func commitLog(dataDir string, dryRun bool, stderr io.Writer) (result, error) {
	info, err := os.Stat(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return result{}, fmt.Errorf("data dir %s does not exist", dataDir)
	}
	if err != nil {
		return result{}, fmt.Errorf("data dir %s: %w", dataDir, err)
	}
	if !info.IsDir() {
		return result{}, fmt.Errorf("data dir %s is not a directory", dataDir)
	}
	walDir := filepath.Join(dataDir, "member", "wal")
	snapDir := filepath.Join(dataDir, "member", "snap")
	if !wal.Exist(walDir) {
		return result{}, fmt.Errorf("no WAL in %s (no *.wal file): not an etcd member's data dir, or one that never started", walDir)
	}
	lg := zap.NewNop()

	// Take every WAL file's lock before reading anything: etcd holds the lock of the files it writes
	// (at least the tail) for as long as it runs, so this fails at once while it runs on this data dir.
	locks, err := lockWALFiles(walDir)
	if err != nil {
		return result{}, err
	}
	walSnap, err := newestSnapshot(lg, walDir, snapDir)
	if err != nil {
		unlockAll(locks)
		return result{}, err
	}
	if dryRun {
		defer unlockAll(locks)
		return readOnly(lg, walDir, walSnap)
	}
	// wal.Open takes the same locks again (one lock per open file description): release ours first.
	unlockAll(locks)
	return commitWAL(lg, walDir, walSnap, stderr)
}

// newestSnapshot is the snapshot etcd's bootstrap starts from (recoverSnapshot): the newest snapshot
// file whose index and term a snapshot record of the WAL names, among those at or below the WAL's
// committed index; the zero snapshot (the WAL's beginning) when there is none.
func newestSnapshot(lg *zap.Logger, walDir, snapDir string) (walpb.Snapshot, error) {
	walSnaps, err := wal.ValidSnapshotEntries(lg, walDir)
	if err != nil {
		return walpb.Snapshot{}, describeWALError(walDir, "reading its snapshot records", err)
	}
	if _, statErr := os.Stat(snapDir); errors.Is(statErr, os.ErrNotExist) {
		return walpb.Snapshot{}, nil
	}
	snapshot, err := snap.New(lg, snapDir).LoadNewestAvailable(walSnaps)
	if errors.Is(err, snap.ErrNoSnapshot) {
		return walpb.Snapshot{}, nil
	}
	if err != nil {
		return walpb.Snapshot{}, fmt.Errorf("cannot load the newest snapshot in %s: %w", snapDir, err)
	}
	return walpb.Snapshot{Index: snapshot.Metadata.Index, Term: snapshot.Metadata.Term}, nil
}

func lockWALFiles(walDir string) ([]*fileutil.LockedFile, error) {
	names, err := fileutil.ReadDir(walDir, fileutil.WithExt(".wal"))
	if err != nil {
		return nil, fmt.Errorf("cannot list the WAL files in %s: %w", walDir, err)
	}
	var locks []*fileutil.LockedFile
	for _, name := range names {
		p := filepath.Join(walDir, name)
		l, err := fileutil.TryLockFile(p, os.O_RDWR, fileutil.PrivateFileMode)
		if err != nil {
			unlockAll(locks)
			if errors.Is(err, fileutil.ErrLocked) {
				return nil, lockedError(walDir)
			}
			return nil, fmt.Errorf("cannot open WAL file %s: %w", p, err)
		}
		locks = append(locks, l)
	}
	return locks, nil
}

func unlockAll(locks []*fileutil.LockedFile) {
	for _, l := range locks {
		_ = l.Close()
	}
}

func lockedError(walDir string) error {
	return fmt.Errorf("WAL %s is locked by another process: is etcd running on this data dir? Stop it first (nothing was written)", walDir)
}

func describeWALError(walDir, doing string, err error) error {
	switch {
	case errors.Is(err, fileutil.ErrLocked):
		return lockedError(walDir)
	case errors.Is(err, wal.ErrCRCMismatch), errors.Is(err, walpb.ErrCRCMismatch):
		return fmt.Errorf("WAL %s is corrupt (CRC mismatch while %s): %w", walDir, doing, err)
	default:
		return fmt.Errorf("WAL %s is corrupt or unreadable (while %s): %w", walDir, doing, err)
	}
}

func lastIndexOf(walSnap walpb.Snapshot, ents []raftpb.Entry) uint64 {
	if len(ents) == 0 {
		return walSnap.Index
	}
	return ents[len(ents)-1].Index
}

func plan(st raftpb.HardState, walSnap walpb.Snapshot, ents []raftpb.Entry) result {
	last := lastIndexOf(walSnap, ents)
	return result{CommitBefore: st.Commit, CommitAfter: max(st.Commit, last), LastIndex: last}
}

// readOnly reads the WAL without writing (the caller holds the locks). A torn write at the tail is
// tolerated in read mode: the report is then about the records before it.
func readOnly(lg *zap.Logger, walDir string, walSnap walpb.Snapshot) (result, error) {
	w, err := wal.OpenForRead(lg, walDir, walSnap)
	if err != nil {
		return result{}, describeWALError(walDir, "opening it", err)
	}
	defer w.Close()
	_, st, ents, err := w.ReadAll()
	if err != nil {
		return result{}, describeWALError(walDir, "reading it", err)
	}
	return plan(st, walSnap, ents), nil
}

// commitWAL opens the WAL for appending (taking its locks), reads it to the end, appends the raised
// HardState and syncs it. Like etcd's openWALFromSnapshot, a torn write at the tail
// (io.ErrUnexpectedEOF) is repaired once; anything else is corruption and nothing is written.
func commitWAL(lg *zap.Logger, walDir string, walSnap walpb.Snapshot, stderr io.Writer) (result, error) {
	repaired := false
	for {
		w, err := wal.Open(lg, walDir, walSnap)
		if err != nil {
			return result{}, describeWALError(walDir, "opening it", err)
		}
		_, st, ents, err := w.ReadAll()
		if err != nil {
			_ = w.Close()
			if repaired || !errors.Is(err, io.ErrUnexpectedEOF) {
				return result{}, describeWALError(walDir, "reading it", err)
			}
			if !wal.Repair(lg, walDir) {
				return result{}, fmt.Errorf("WAL %s has a torn write at its tail that could not be repaired: %w", walDir, err)
			}
			fmt.Fprintf(stderr, "etcd-wal-commit: repaired a torn write at the tail of %s (as etcd does on start)\n", walDir)
			repaired = true
			continue
		}
		res := plan(st, walSnap, ents)
		if res.CommitAfter > st.Commit {
			raised := st
			raised.Commit = res.CommitAfter
			if err := w.Save(raised, nil); err != nil {
				_ = w.Close()
				return result{}, fmt.Errorf("cannot append the HardState to WAL %s: %w", walDir, err)
			}
			if err := w.Sync(); err != nil {
				_ = w.Close()
				return result{}, fmt.Errorf("cannot sync WAL %s: %w", walDir, err)
			}
		}
		if err := w.Close(); err != nil {
			return result{}, fmt.Errorf("cannot close WAL %s: %w", walDir, err)
		}
		if err := verify(lg, walDir, walSnap, res.CommitAfter); err != nil {
			return result{}, err
		}
		return res, nil
	}
}

// verify reads the WAL back and checks that its last HardState carries the commit index written.
func verify(lg *zap.Logger, walDir string, walSnap walpb.Snapshot, commit uint64) error {
	w, err := wal.OpenForRead(lg, walDir, walSnap)
	if err != nil {
		return describeWALError(walDir, "re-opening it", err)
	}
	defer w.Close()
	_, st, _, err := w.ReadAll()
	if err != nil {
		return describeWALError(walDir, "reading it back", err)
	}
	if st.Commit != commit {
		return fmt.Errorf("WAL %s reads back commit index %d after writing %d", walDir, st.Commit, commit)
	}
	return nil
}
