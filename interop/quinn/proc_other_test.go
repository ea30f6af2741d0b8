//go:build !linux

package quinn_test

import "os/exec"

// dieWithTest does nothing where the kernel cannot tie a child's life to
// its parent's; the test's cleanups still kill the peer.
func dieWithTest(*exec.Cmd) {}
