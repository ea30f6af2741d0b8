package conntest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind; a pipe starts
// none, so whatever is left is a bug in a test or in how quic-go was closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
