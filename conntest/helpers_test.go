package conntest_test

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"testing"
	"time"

	"github.com/quicconn/quicconn/conntest"
)

// newPipe returns a pipe whose ends are closed when the test ends.
func newPipe(t testing.TB, l conntest.Link) (a, b *conntest.PacketConn) {
	t.Helper()
	a, b = conntest.NewPipe(l)
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}

// sendNumbered writes n packets of size bytes from a to b, each starting with
// its index.
func sendNumbered(t testing.TB, a, b *conntest.PacketConn, n, size int) {
	t.Helper()
	buf := make([]byte, size)
	for i := range n {
		binary.BigEndian.PutUint32(buf, uint32(i))
		if _, err := a.WriteTo(buf, b.LocalAddr()); err != nil {
			t.Fatalf("WriteTo #%d: %v", i, err)
		}
	}
}

// arrival is a packet read by recvNumbered: its index and when it was read.
type arrival struct {
	index int
	at    time.Time
}

// recvNumbered reads the packets sendNumbered wrote until wait has passed,
// and returns them in the order they were read.
func recvNumbered(t testing.TB, b *conntest.PacketConn, wait time.Duration) []arrival {
	t.Helper()
	if err := b.SetReadDeadline(time.Now().Add(wait)); err != nil {
		t.Fatal(err)
	}
	defer b.SetReadDeadline(time.Time{})
	var got []arrival
	buf := make([]byte, 64<<10)
	for {
		n, _, err := b.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return got
		}
		if err != nil {
			t.Fatalf("ReadFrom: %v", err)
		}
		if n < 4 {
			t.Fatalf("ReadFrom: %d bytes, want at least 4", n)
		}
		got = append(got, arrival{int(binary.BigEndian.Uint32(buf)), time.Now()})
	}
}

func indices(as []arrival) []int {
	out := make([]int, len(as))
	for i, a := range as {
		out[i] = a.index
	}
	return out
}

// isTimeout reports whether err is a deadline error in both ways callers
// check for one.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) && errors.As(err, &ne) && ne.Timeout()
}
