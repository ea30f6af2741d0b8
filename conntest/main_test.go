package conntest_test

import (
	"flag"
	"testing"

	"go.uber.org/goleak"
)

var soak = flag.Bool("soak", false, "run the long variants (the 100-node mesh simulation)")

// TestMain fails the run if any test leaves a goroutine behind; a pipe starts
// none, so whatever is left is a bug in a test or in how quic-go was closed.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
