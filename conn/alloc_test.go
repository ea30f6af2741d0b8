package conn_test

import (
	"context"
	"io"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The performance contract: the adapter adds no allocation on the stream
// path, and at most one small allocation per datagram sent or received.
// Each test checks it twice:
//
//   - exactly, by attribution: with every allocation profiled
//     (runtime.MemProfileRate = 1), it counts the objects allocated at sites
//     whose innermost frame outside the runtime and the standard library is
//     quicconn's own code, not quic-go's (stdlib calls made by the adapter,
//     such as context.WithCancel, count as the adapter's);
//   - side by side: testing.AllocsPerRun of the same round through quicconn
//     and through raw quic-go. AllocsPerRun counts the whole process,
//     quic-go's own goroutines included, so the minimum of a few runs is
//     compared with a tolerance, and not at all under the race detector,
//     which allocates on some paths itself.

// adapterAllocs returns the objects and bytes the heap profile has ever seen
// allocated at quicconn's own sites (see above) on stacks that pass keep.
// Pointer-free allocations under 16 bytes share 16-byte blocks (the
// runtime's tiny allocator) and are counted per block.
func adapterAllocs(keep func(frames []string) bool) (objects, bytes int64) {
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
	for _, r := range recs {
		var fns []string
		frames := runtime.CallersFrames(r.Stack())
		for {
			f, more := frames.Next()
			fns = append(fns, f.Function)
			if !more {
				break
			}
		}
		for _, fn := range fns {
			if strings.HasPrefix(fn, "github.com/") {
				if isAdapterFunc(fn) && keep(fns) {
					objects += r.AllocObjects
					bytes += r.AllocBytes
				}
				break
			}
		}
	}
	return objects, bytes
}

// onStackOf returns a filter for adapterAllocs that keeps the stacks
// through fn, or with not, those that do not pass through it.
func onStackOf(fn string, not bool) func([]string) bool {
	return func(frames []string) bool {
		for _, f := range frames {
			if f == fn {
				return !not
			}
		}
		return not
	}
}

func anyStack([]string) bool { return true }

// isAdapterFunc reports whether fn is quicconn library code (tests and
// their helpers excluded).
func isAdapterFunc(fn string) bool {
	rest, ok := strings.CutPrefix(fn, "github.com/quicconn/quicconn/")
	if !ok {
		return false
	}
	pkg, _, _ := strings.Cut(rest, ".")
	return !strings.HasSuffix(pkg, "_test") && !strings.HasPrefix(rest, "conntest")
}

// perOpAdapterAllocs runs f n times with every allocation profiled and
// returns the adapter's objects and bytes per run, on the stacks each filter
// keeps.
func perOpAdapterAllocs(n int, f func(), keep ...func([]string) bool) (objects, bytes []float64) {
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	defer func() { runtime.MemProfileRate = old }()
	o0, b0 := make([]int64, len(keep)), make([]int64, len(keep))
	for i, k := range keep {
		o0[i], b0[i] = adapterAllocs(k)
	}
	for range n {
		f()
	}
	for i, k := range keep {
		o1, b1 := adapterAllocs(k)
		objects = append(objects, float64(o1-o0[i])/float64(n))
		bytes = append(bytes, float64(b1-b0[i])/float64(n))
	}
	return objects, bytes
}

// minAllocsPerRun is the smallest of a few testing.AllocsPerRun results.
func minAllocsPerRun(runs int, f func()) float64 {
	best := -1.0
	for range 3 {
		if a := testing.AllocsPerRun(runs, f); best < 0 || a < best {
			best = a
		}
	}
	return best
}

func TestStreamIOAllocs(t *testing.T) {
	e := newPerfEnv(t)
	qcC, qcS := e.connStreams(e.connPair())
	rawC, rawS := e.rawStreams(e.rawPair())
	wbuf, rbuf := make([]byte, 64<<10), make([]byte, 64<<10)
	round := func(write func([]byte) (int, error), read func([]byte) (int, error)) func() {
		return func() {
			if _, err := write(wbuf); err != nil {
				t.Fatalf("write: %v", err)
			}
			if _, err := io.ReadFull(readerFunc(read), rbuf); err != nil {
				t.Fatalf("read: %v", err)
			}
		}
	}
	qc, raw := round(qcC.Write, qcS.Read), round(rawC.Write, rawS.Read)
	for range 30 { // flow-control windows grow during the first rounds
		qc()
		raw()
	}

	o, _ := perOpAdapterAllocs(30, qc, anyStack)
	if objs := o[0]; objs != 0 {
		t.Errorf("quicconn's own code allocated %.2f objects per 64 KiB Write+Read, want 0", objs)
	}

	rawA, qcA := minAllocsPerRun(20, raw), minAllocsPerRun(20, qc)
	t.Logf("allocations per 64 KiB Write+Read, process-wide: quic-go %.0f, quicconn %.0f; quicconn's own sites: %.2f", rawA, qcA, o[0])
	if raceEnabled {
		return
	}
	if qcA > rawA*1.1+2 {
		t.Errorf("quicconn %.0f allocations per 64 KiB Write+Read, raw quic-go %.0f", qcA, rawA)
	}
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestDatagramAllocs(t *testing.T) {
	e := newPerfEnv(t)
	qcClient, qcServer := e.connPair()
	rawClient, rawServer := e.rawPair()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	payload := make([]byte, 1100)
	round := func(send func([]byte) error, receive func(context.Context) ([]byte, error)) func() {
		return func() {
			if err := send(payload); err != nil {
				t.Fatalf("send: %v", err)
			}
			if _, err := receive(ctx); err != nil {
				t.Fatalf("receive: %v", err)
			}
		}
	}
	qc := round(qcClient.SendDatagram, qcServer.ReceiveDatagram)
	raw := round(rawClient.SendDatagram, rawServer.ReceiveDatagram)
	for range 200 { // the receive queue's ring grows to its working size
		qc()
		raw()
	}

	// A round is one SendDatagram and one ReceiveDatagram, which receives
	// from quic-go itself, or takes what the queue's drainer moved while
	// the receiver was away; the contract allows one small object for each.
	const send = "github.com/quicconn/quicconn/conn.(*Connection).SendDatagram"
	objs, bytes := perOpAdapterAllocs(100, qc, onStackOf(send, false), onStackOf(send, true))
	for i, side := range []string{"SendDatagram", "the receive path (ReceiveDatagram and the queue's drainer)"} {
		if objs[i] > 1 || bytes[i] > 64 {
			t.Errorf("quicconn's own code allocated %.2f objects (%.0f bytes) per datagram in %s, want at most 1 small object", objs[i], bytes[i], side)
		}
	}

	rawA, qcA := minAllocsPerRun(100, raw), minAllocsPerRun(100, qc)
	t.Logf("allocations per 1100-byte datagram sent and received, process-wide: quic-go %.0f, quicconn %.0f; quicconn's own sites: send %.2f objects (%.0f bytes), receive %.2f objects (%.0f bytes)",
		rawA, qcA, objs[0], bytes[0], objs[1], bytes[1])
	if raceEnabled {
		return
	}
	if qcA > rawA+2 {
		t.Errorf("quicconn %.0f allocations per datagram round, raw quic-go %.0f: more than one per side added", qcA, rawA)
	}
}
