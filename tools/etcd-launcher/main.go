// etcd-launcher is the entrypoint of a member Pod's etcd container: it runs etcd as its child, restarts
// it in place when the fault agent kills it, and honours the crash fault's hold file first:
//
//	etcd-launcher --hold-file=/var/lib/etcd/data.hold -- etcd --name=m0 --data-dir=/var/lib/etcd/data ...
//
// The agent beside etcd (the Pod shares one process namespace) SIGKILLs etcd for the kill and crash faults;
// for crash it first writes the hold file (whole ms since the epoch until which etcd must stay down,
// src/faults/hold.ts). Were etcd the container's process, the kubelet would restart the container under
// its crash back-off (10 s, doubling up to 5 minutes), which the fault's duration cannot control. The
// launcher instead starts etcd again on its data as a local supervisor does: at once after a kill, once
// the hold is over after a crash. Like every agent fault the hold is a lease: an expired, unreadable or
// implausible one (more than a day ahead) is ignored, and the agent removes it when the fault heals, so
// etcd is never held down forever even if the agent dies.
//
// --hold-file may be given more than once: etcd starts only when no hold holds. The fault agent's second
// use of a hold is the survivor recovery of a two-node-plus-witness failover (src/faults/agent-recovery.ts):
// it holds etcd down while etcd-wal-commit rewrites the WAL, then writes the --force-file. While that file
// exists each start of etcd adds --force-new-cluster (as the local placement's guard script does), until
// the operator's finishRecovery has the agent remove it.
//
//	etcd-launcher --hold-file=/var/lib/etcd/data.hold --hold-file=/var/lib/etcd/data.recovery-hold \
//	    --force-file=/var/lib/etcd/data.force-new-cluster -- etcd ...
//
// Only a SIGKILL restarts etcd in place. An etcd that exits by itself (a panic, a fatal error, a gofail
// panic fault) ends the launcher with its exit code, so the kubelet sees the crash, counts the restart and
// backs off as it would for etcd itself. SIGTERM and SIGINT go to etcd, and the launcher exits with it.
//
//	etcd-launcher install DEST
//
// copies this executable to DEST (an init container puts it on a volume the etcd container mounts: the
// etcd image is upstream's and has no shell).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxHoldAhead matches maxHoldAheadMs in src/faults/hold.ts.
const maxHoldAhead = 24 * time.Hour

// pollInterval bounds how late etcd starts after the agent removes a hold early (the fault healed).
const pollInterval = 100 * time.Millisecond

var holdPattern = regexp.MustCompile(`^\d{1,16}$`)

// holdUntil is the expiry the hold file gives while it holds (it exists, reads as one, and is in the
// future by at most maxHoldAhead), as src/faults/hold.ts reads it.
func holdUntil(file string, now time.Time) (time.Time, bool) {
	data, err := os.ReadFile(file)
	if err != nil {
		return time.Time{}, false
	}
	text := strings.TrimSpace(string(data))
	if !holdPattern.MatchString(text) {
		return time.Time{}, false
	}
	ms, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	until := time.UnixMilli(ms)
	if !until.After(now) || until.After(now.Add(maxHoldAhead)) {
		return time.Time{}, false
	}
	return until, true
}

// firstHold is the first of the files that holds now, with its expiry.
func firstHold(files []string, now time.Time) (string, time.Time, bool) {
	for _, file := range files {
		if until, held := holdUntil(file, now); held {
			return file, until, true
		}
	}
	return "", time.Time{}, false
}

// waitOutHold returns true once no hold file holds, or false when a stop signal came first.
func waitOutHold(files []string, stop <-chan os.Signal) bool {
	announced := false
	for {
		file, until, held := firstHold(files, time.Now())
		if !held {
			if announced {
				fmt.Fprintln(os.Stderr, "etcd-launcher: hold released, starting etcd")
			}
			return true
		}
		if !announced {
			fmt.Fprintf(os.Stderr, "etcd-launcher: held down by %s until %s\n", file, until.UTC().Format(time.RFC3339Nano))
			announced = true
		}
		wait := time.Until(until)
		if wait > pollInterval {
			wait = pollInterval
		}
		select {
		case <-stop:
			return false
		case <-time.After(wait):
		}
	}
}

// withForce is etcd's command line for this start: --force-new-cluster added while the force file exists.
func withForce(command []string, forceFile string) []string {
	if forceFile == "" {
		return command
	}
	if _, err := os.Stat(forceFile); err != nil {
		return command
	}
	fmt.Fprintf(os.Stderr, "etcd-launcher: %s exists: starting etcd with --force-new-cluster\n", forceFile)
	return append(append([]string{}, command...), "--force-new-cluster")
}

// runOnce starts the command, forwards stop signals to it, and waits for it. killed: it died of SIGKILL
// while the launcher was not stopping (the agent's kill or crash), so it is to be started again.
func runOnce(binary string, command []string, stop <-chan os.Signal, stopping *bool) (code int, killed bool, err error) {
	cmd := exec.Command(binary, command[1:]...)
	cmd.Args[0] = command[0] // the agent finds etcd by its argv[0] and --data-dir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, false, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	for {
		select {
		case sig := <-stop:
			*stopping = true
			_ = cmd.Process.Signal(sig)
		case waitErr := <-done:
			var exit *exec.ExitError
			if waitErr != nil && !errors.As(waitErr, &exit) {
				return 0, false, waitErr
			}
			state := cmd.ProcessState
			if status, ok := state.Sys().(syscall.WaitStatus); ok && status.Signaled() {
				if status.Signal() == syscall.SIGKILL && !*stopping {
					return 0, true, nil
				}
				return 128 + int(status.Signal()), false, nil
			}
			return state.ExitCode(), false, nil
		}
	}
}

// supervise runs etcd until it exits by itself or is stopped, restarting it after each SIGKILL once the
// hold is over. It returns the launcher's exit code.
func supervise(holdFiles []string, forceFile string, command []string) int {
	stop := make(chan os.Signal, 4)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	binary, err := exec.LookPath(command[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd-launcher: %v\n", err)
		return 127
	}
	stopping := false
	for {
		if !waitOutHold(holdFiles, stop) {
			return 0
		}
		code, killed, err := runOnce(binary, withForce(command, forceFile), stop, &stopping)
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd-launcher: %s: %v\n", binary, err)
			return 126
		}
		if !killed {
			return code
		}
		fmt.Fprintln(os.Stderr, "etcd-launcher: etcd was killed (SIGKILL): starting it again on its data")
	}
}

func install(dest string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	in, err := os.Open(self)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := dest + ".tmp"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Clean(dest))
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: etcd-launcher --hold-file=FILE [--hold-file=FILE...] [--force-file=FILE] -- etcd [ARGS...]\n       etcd-launcher install DEST")
	os.Exit(2)
}

func main() {
	args := os.Args[1:]
	if len(args) == 2 && args[0] == "install" {
		if err := install(args[1]); err != nil {
			fmt.Fprintf(os.Stderr, "etcd-launcher: install %s: %v\n", args[1], err)
			os.Exit(1)
		}
		return
	}
	var holdFiles []string
	forceFile := ""
	i := 0
	for ; i < len(args) && args[i] != "--"; i++ {
		switch {
		case strings.HasPrefix(args[i], "--hold-file=") && len(args[i]) > len("--hold-file="):
			holdFiles = append(holdFiles, strings.TrimPrefix(args[i], "--hold-file="))
		case strings.HasPrefix(args[i], "--force-file=") && len(args[i]) > len("--force-file=") && forceFile == "":
			forceFile = strings.TrimPrefix(args[i], "--force-file=")
		default:
			usage()
		}
	}
	if len(holdFiles) == 0 || i+1 >= len(args) {
		usage()
	}
	command := args[i+1:]
	os.Exit(supervise(holdFiles, forceFile, command))
}
