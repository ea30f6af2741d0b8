package stream_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/quicconn/quicconn/stream"
)

var sink any

func TestConstructorsAllocateOnce(t *testing.T) {
	c, s := newConnPair(t, nil)
	cb, _ := openBidi(t, c, s)
	cu, su := openUni(t, c, s)

	tests := []struct {
		name string
		f    func()
	}{
		{"NewStream", func() { sink = stream.NewStream(cb) }},
		{"NewSendOnlyStream", func() { sink = stream.NewSendOnlyStream(cu) }},
		{"NewReadStream", func() { sink = stream.NewReadStream(su) }},
		{"NewSendStream", func() { sink = stream.NewSendStream(cu, 0) }},
		{"Split", func() { sink, _ = stream.NewStream(cb).Split() }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if allocs := testing.AllocsPerRun(100, tt.f); allocs != 1 {
				t.Errorf("%v allocations, want 1", allocs)
			}
		})
	}
}

// transfer64K writes 64 KiB with write and reads it back with read, on an
// established stream; the buffers are the caller's.
func transfer64K(t testing.TB, write func([]byte) (int, error), read func([]byte) (int, error), wbuf, rbuf []byte) {
	if _, err := write(wbuf); err != nil {
		t.Fatalf("write: %v", err)
	}
	for got := 0; got < len(wbuf); {
		n, err := read(rbuf[got:])
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		got += n
	}
}

// TestReadWriteAddNoAllocations proves that Read and Write hand the buffer to
// quic-go without allocating: the wrapper's own code has no allocation site
// on the path, and the process-wide allocation count of a 64 KiB round
// through the wrapper matches the same round on raw quic-go streams. (quic-go
// itself allocates a little per packet, on its own goroutines, which
// AllocsPerRun counts too.)
func TestReadWriteAddNoAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over a real connection")
	}
	c, s := newConnPair(t, nil)
	rawC, rawS := openBidi(t, c, s)
	wrC, wrS := openBidi(t, c, s)
	client, server := stream.NewStream(wrC), stream.NewStream(wrS)
	wbuf, rbuf := pattern(64<<10), make([]byte, 64<<10)

	raw := func() { transfer64K(t, rawC.Write, rawS.Read, wbuf, rbuf) }
	wrapped := func() { transfer64K(t, client.Write, server.Read, wbuf, rbuf) }
	// Warm both up: flow-control windows grow during the first rounds.
	for range 50 {
		raw()
		wrapped()
	}

	// Attribution: with every allocation profiled, none may be made by the
	// wrapper's own frames.
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	before := wrapperAllocs()
	for range 30 {
		wrapped()
	}
	after := wrapperAllocs()
	runtime.MemProfileRate = old
	if after > before {
		t.Errorf("the wrapper's Read and Write allocated %d objects in 30 rounds of 64 KiB", after-before)
	}

	// Side by side: the minimum of a few measurements, to see through the
	// noise of quic-go's own goroutines.
	minOf := func(f func()) float64 {
		best := -1.0
		for range 3 {
			if a := testing.AllocsPerRun(30, f); best < 0 || a < best {
				best = a
			}
		}
		return best
	}
	rawAllocs, wrappedAllocs := minOf(raw), minOf(wrapped)
	t.Logf("allocations per 64 KiB write+read round, process-wide: raw quic-go %.2f, wrapper %.2f", rawAllocs, wrappedAllocs)
	// A tolerance for that noise; the attribution above is the exact check.
	if wrappedAllocs > rawAllocs*1.05+1 {
		t.Errorf("wrapper %.2f allocations per round, raw quic-go %.2f", wrappedAllocs, rawAllocs)
	}
}

// wrapperAllocs counts the objects ever allocated, according to the heap
// profile, at sites whose innermost non-runtime frame is one of the stream
// package's Read or Write methods or their helpers.
func wrapperAllocs() int64 {
	runtime.GC()
	runtime.GC() // the profile lags up to two cycles
	var recs []runtime.MemProfileRecord
	n, _ := runtime.MemProfile(nil, true)
	for {
		recs = make([]runtime.MemProfileRecord, n+50)
		var ok bool
		if n, ok = runtime.MemProfile(recs, true); ok {
			recs = recs[:n]
			break
		}
	}
	var total int64
	for _, r := range recs {
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			if !strings.HasPrefix(f.Function, "runtime.") {
				if isWrapperIOFunc(f.Function) {
					total += r.AllocObjects
				}
				break
			}
			if !more {
				break
			}
		}
	}
	return total
}

func isWrapperIOFunc(fn string) bool {
	const pkg = "github.com/quicconn/quicconn/stream."
	name, ok := strings.CutPrefix(fn, pkg)
	if !ok {
		return false
	}
	switch name {
	case "(*Stream).Read", "(*Stream).Write",
		"(*ReadStream).Read", "(*ReadStream).read",
		"(*WriteStream).Write", "(*WriteStream).write":
		return true
	}
	return false
}
