//go:build !unix

package main

import "time"

// cpuTime is 0 where getrusage does not exist: the CPU rows then stay empty.
func cpuTime() time.Duration { return 0 }

// ensureFiles does nothing where there is no ulimit -n.
func ensureFiles(int) error { return nil }

// openFiles is -1: there is no portable count of open handles.
func openFiles() int { return -1 }
