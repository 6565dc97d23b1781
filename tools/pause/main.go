// pause: the sandbox process of the test node's Pods (containerd's sandbox_image). It holds the Pod's
// namespaces until the runtime stops it: it blocks until SIGTERM or SIGINT and exits 0. As PID 1 of a
// Pod that shares its process namespace it also reaps the orphans reparented to it, as Kubernetes'
// own pause does, so no zombies pile up when a container's children outlive their parent.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig != syscall.SIGCHLD {
			os.Exit(0)
		}
		reap()
	}
}

// reap collects every exited child without blocking (one SIGCHLD may stand for several exits).
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
