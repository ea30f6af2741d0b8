//go:build unix

package main

import (
	"fmt"
	"os"
	"syscall"
	"time"
)

// cpuTime is the user and system CPU time of the process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ensureFiles makes sure the process may have n files open, raising the
// soft limit (ulimit -n) up to the hard one, or the hard one where the
// process may. Go already raises the soft limit to the hard one at start-up
// on some systems; this also covers the others and a hard limit that is too
// low for a privileged process.
func ensureFiles(n int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fmt.Errorf("reading the limit on open files: %w", err)
	}
	need := uint64(n)
	if lim.Cur >= need {
		return nil
	}
	want := lim
	want.Cur = max(need, min(lim.Max, 1<<20))
	if want.Max < want.Cur {
		want.Max = want.Cur
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
		return fmt.Errorf("%d files must be open at once, and the limit is %d (hard %d): %v; raise it with ulimit -n %d", n, lim.Cur, lim.Max, err, n)
	}
	return nil
}

// openFiles counts the process's open file descriptors, -1 where it cannot.
func openFiles() int {
	for _, dir := range []string{"/proc/self/fd", "/dev/fd"} {
		if fds, err := os.ReadDir(dir); err == nil {
			return len(fds)
		}
	}
	return -1
}
