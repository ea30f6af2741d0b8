package conntest_test

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/quicconn/quicconn/conntest"
	"github.com/quicconn/quicconn/stream"
)

// In a test, NewPair is one line: client, server := conntest.NewPair(t).
// An Example has no *testing.T, so this one passes exampleTB, a minimal
// testing.TB that runs the cleanups NewPair registers when the example calls
// its finish method.
func ExampleNewPair() {
	t := &exampleTB{name: "ExampleNewPair"}
	defer t.finish() // closes the pair's Registration and pipe

	client, server := conntest.NewPair(t,
		conntest.WithALPN("demo/1"),
		conntest.WithLink(conntest.Link{Delay: 5 * time.Millisecond, Loss: 0.02, Seed: 1}),
	)
	fmt.Println(client.State(), server.State(), client.NegotiatedALPN())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	go func() { // the server echoes one stream
		s, err := server.AcceptInboundStream(ctx)
		if err != nil {
			return
		}
		io.Copy(s, s)
		s.Close()
	}()
	s, err := client.OpenOutboundStream(ctx, stream.Bidirectional, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	s.Write([]byte("hello through a lossy in-memory link"))
	s.Close()
	reply, err := io.ReadAll(s)
	fmt.Printf("%s %v\n", reply, err)
	// Output:
	// Connected Connected demo/1
	// hello through a lossy in-memory link <nil>
}

// exampleTB is the part of testing.TB that NewPair uses. Calling any other
// method panics on the nil embedded interface.
type exampleTB struct {
	testing.TB // nil
	name       string
	cleanups   []func()
	failed     bool
}

func (t *exampleTB) Helper()          {}
func (t *exampleTB) Name() string     { return t.name }
func (t *exampleTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }
func (t *exampleTB) Failed() bool     { return t.failed }

// Errorf prints the failure, so that the example's output no longer matches.
func (t *exampleTB) Errorf(format string, args ...any) {
	t.failed = true
	fmt.Printf(format+"\n", args...)
}

// Fatalf is Errorf that stops the example.
func (t *exampleTB) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	panic("fatal: " + fmt.Sprintf(format, args...))
}

// finish runs the cleanups, last registered first, as testing does.
func (t *exampleTB) finish() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
}
