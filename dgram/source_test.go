package dgram

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
)

// source is a Source that behaves as quic-go's datagram receiver does: it
// holds up to cap unread datagrams and drops newer ones without a word
// (counted here in lost, so that a test can prove that the queue drained it
// in time), prefers a held datagram over an ended context, and fails once
// closed.
type source struct {
	held chan []byte
	// closed ends every ReceiveDatagram; closeOnce guards it.
	closed    chan struct{}
	closeOnce sync.Once
	lost      atomic.Int64
	// drained counts the datagrams returned to a caller whose context does
	// not carry appKey, the queue's own drainer, and direct the others.
	drained, direct atomic.Int64
}

var errSourceClosed = errors.New("source closed")

// appKey marks the contexts of the application's Gets, so that the source
// can tell them from the drainer's.
type appKey struct{}

var appCtx = context.WithValue(context.Background(), appKey{}, true)

func newSource(capacity int) *source {
	return &source{held: make(chan []byte, capacity), closed: make(chan struct{})}
}

// send delivers b, or drops it when the source already holds cap datagrams.
func (s *source) send(b []byte) {
	select {
	case s.held <- b:
	default:
		s.lost.Add(1)
	}
}

func (s *source) close() { s.closeOnce.Do(func() { close(s.closed) }) }

func (s *source) ReceiveDatagram(ctx context.Context) ([]byte, error) {
	if err := context.Cause(ctx); err != nil {
		return nil, err
	}
	select {
	case b := <-s.held:
		return s.returned(ctx, b), nil
	default:
	}
	select {
	case b := <-s.held:
		return s.returned(ctx, b), nil
	case <-s.closed:
		return nil, errSourceClosed
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
}

func (s *source) returned(ctx context.Context, b []byte) []byte {
	if ctx.Value(appKey{}) == nil {
		s.drained.Add(1)
	} else {
		s.direct.Add(1)
	}
	return b
}

// get is one Get that must return b.
func get(t *testing.T, q *Queue, ctx context.Context, want string) {
	t.Helper()
	b, err := q.Get(ctx)
	if err != nil || string(b) != want {
		t.Fatalf("Get() = %q, %v; want %q, nil", b, err, want)
	}
}

// receiving reports, as the queue sees it, how many Gets receive from the
// source and whether the drainer does.
func receiving(q *Queue) (gets int, drainer bool) {
	q.gate.Lock()
	defer q.unlock()
	return int(q.direct.Load()), q.stopDrainer != nil
}

// TestSourceKeepingUp: while the application waits in Get, each datagram
// goes from the source to the Get itself; the queue's drainer, which
// ReceiveFrom puts off by takeoverDelay, never starts.
func TestSourceKeepingUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(128)
		q := NewQueue(4)
		done := make(chan struct{})
		q.ReceiveFrom(src, done)
		synctest.Wait()
		if gets, drainer := receiving(q); gets != 0 || drainer || !q.armed.Load() {
			t.Fatalf("after ReceiveFrom: %d Gets receiving, drainer %v, takeover armed %v; want 0, false, true", gets, drainer, q.armed.Load())
		}
		const n = 100
		got := make(chan string)
		go func() {
			for range n {
				b, err := q.Get(appCtx)
				if err != nil {
					t.Errorf("Get: %v", err)
					return
				}
				got <- string(b)
			}
		}()
		for i := range n {
			synctest.Wait() // the Get is waiting
			if gets, drainer := receiving(q); gets != 1 || drainer {
				t.Fatalf("datagram %d: %d Gets receiving, drainer %v; want 1, false", i, gets, drainer)
			}
			src.send([]byte(strconv.Itoa(i)))
			if b := <-got; b != strconv.Itoa(i) {
				t.Fatalf("Get() = %q, want %d", b, i)
			}
		}
		if d := src.drained.Load(); d != 0 {
			t.Errorf("the drainer received %d datagrams, want 0", d)
		}
		if diff := cmp.Diff(Stats{Received: n}, q.Stats()); diff != "" {
			t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
		}
		q.Close(nil)
		<-done
	})
}

// TestSourceNeverRead: when no Get comes, the drainer starts takeoverDelay
// after ReceiveFrom and moves what the source holds into the queue, where
// the first Get finds it, oldest first.
func TestSourceNeverRead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(8)
		q := NewQueue(4)
		done := make(chan struct{})
		q.ReceiveFrom(src, done)
		for _, d := range []string{"a", "b", "c"} {
			src.send([]byte(d))
		}
		time.Sleep(takeoverDelay - time.Nanosecond)
		synctest.Wait()
		if _, drainer := receiving(q); drainer || src.drained.Load() != 0 {
			t.Fatalf("before takeoverDelay: drainer %v, %d drained; want false, 0", drainer, src.drained.Load())
		}
		time.Sleep(time.Nanosecond)
		synctest.Wait()
		if _, drainer := receiving(q); !drainer {
			t.Fatal("after takeoverDelay: no drainer, want one")
		}
		if diff := cmp.Diff(Stats{Received: 3, Queued: 3}, q.Stats()); diff != "" {
			t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
		}
		for _, d := range []string{"a", "b", "c"} {
			get(t, q, appCtx, d)
		}
		q.Close(nil)
		<-done
	})
}

// TestSourceFallingBehind: once no Get has received for takeoverDelay, the
// drainer moves what the source holds into the queue, which bounds it and
// counts the drops, before the source has to drop anything; the next Gets
// take the queued datagrams first, oldest first, and then receive from the
// source again themselves.
func TestSourceFallingBehind(t *testing.T) {
	tests := []struct {
		name  string
		limit int
		away  int // datagrams sent while no Get receives
		want  Stats
		first int // the oldest datagram still queued
	}{
		{"within the bound", 8, 5, Stats{Received: 5, Queued: 5}, 0},
		{"oldest dropped at the bound", 4, 10, Stats{Received: 10, Dropped: 6, Queued: 4}, 6},
		{"more than the source holds", 16, 1000, Stats{Received: 1000, Dropped: 984, Queued: 16}, 984},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := newSource(8)
				q := NewQueue(tt.limit)
				done := make(chan struct{})
				q.ReceiveFrom(src, done)
				go src.send([]byte("first"))
				get(t, q, appCtx, "first")
				// The application does something else for a while.
				time.Sleep(2 * takeoverDelay)
				synctest.Wait()
				if gets, drainer := receiving(q); gets != 0 || !drainer {
					t.Fatalf("away: %d Gets receiving, drainer %v; want 0, true", gets, drainer)
				}
				for i := range tt.away {
					src.send([]byte(strconv.Itoa(i)))
					synctest.Wait() // the drainer keeps up
				}
				if lost := src.lost.Load(); lost != 0 {
					t.Fatalf("the source dropped %d datagrams before the queue took them", lost)
				}
				tt.want.Received++ // "first"
				if diff := cmp.Diff(tt.want, q.Stats()); diff != "" {
					t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
				}
				for i := tt.first; i < tt.away; i++ {
					get(t, q, appCtx, strconv.Itoa(i))
				}
				// The queue is empty: the next Get takes over from the
				// drainer and receives directly.
				go func() {
					synctest.Wait()
					src.send([]byte("direct"))
				}()
				drained := src.drained.Load()
				get(t, q, appCtx, "direct")
				if d := src.drained.Load() - drained; d != 0 {
					t.Errorf("the drainer received %d datagrams after the Get took over, want 0", d)
				}
				q.Close(nil)
				<-done
			})
		})
	}
}

// TestSourceGetGivesUp: a Get whose context ends while it receives from the
// source, or while it waits for the drainer to stop, returns the cause, and
// the drainer takes over again after takeoverDelay, so that nothing is lost
// while nobody receives.
func TestSourceGetGivesUp(t *testing.T) {
	for _, drainerFirst := range []bool{false, true} {
		t.Run("drainer running "+strconv.FormatBool(drainerFirst), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := newSource(8)
				q := NewQueue(64)
				done := make(chan struct{})
				q.ReceiveFrom(src, done)
				if drainerFirst {
					time.Sleep(2 * takeoverDelay)
				} else {
					go src.send([]byte("first"))
					get(t, q, appCtx, "first")
				}
				cause := errors.New("caller gave up")
				ctx, cancel := context.WithCancelCause(appCtx)
				errc := make(chan error, 1)
				go func() {
					_, err := q.Get(ctx)
					errc <- err
				}()
				synctest.Wait()
				cancel(cause)
				if err := <-errc; !errors.Is(err, cause) {
					t.Fatalf("Get() error = %v, want %v", err, cause)
				}
				time.Sleep(2 * takeoverDelay)
				synctest.Wait()
				if gets, drainer := receiving(q); gets != 0 || !drainer {
					t.Fatalf("after the Get gave up: %d Gets receiving, drainer %v; want 0, true", gets, drainer)
				}
				for i := range 20 {
					src.send([]byte(strconv.Itoa(i)))
					synctest.Wait()
				}
				if lost := src.lost.Load(); lost != 0 {
					t.Fatalf("the source dropped %d datagrams", lost)
				}
				if s := q.Stats(); s.Queued != 20 {
					t.Errorf("Stats() = %+v, want 20 queued", s)
				}
				q.Close(nil)
				<-done
			})
		})
	}
}

// TestSourceEndedContext: a Get with an ended context takes a queued
// datagram, and otherwise returns the cause without stopping the drainer.
func TestSourceEndedContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		src := newSource(8)
		q := NewQueue(4)
		done := make(chan struct{})
		q.ReceiveFrom(src, done)
		src.send([]byte("a"))
		time.Sleep(2 * takeoverDelay)
		synctest.Wait() // the drainer has queued it
		if b, err := q.Get(ended); string(b) != "a" || err != nil {
			t.Fatalf("Get(ended) = %q, %v; want a, nil", b, err)
		}
		if _, err := q.Get(ended); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get(ended) on an empty queue = %v, want context.Canceled", err)
		}
		if gets, drainer := receiving(q); gets != 0 || !drainer {
			t.Errorf("after Get(ended): %d Gets receiving, drainer %v; want 0, true", gets, drainer)
		}
		q.Close(nil)
		<-done
	})
}

// TestSourceClose: Close ends the drainer and the takeover timer (done is
// closed, and goleak sees no goroutine left), a Get receiving from the
// source returns the close error once the source ends, and nothing that
// arrives after Close is counted. A source that fails first makes Gets wait
// for Close.
func TestSourceClose(t *testing.T) {
	closeErr := errors.New("connection gone")
	tests := []struct {
		name string
		// end closes q and src in some order while a Get receives.
		end func(q *Queue, src *source)
	}{
		{"queue closed, then source", func(q *Queue, src *source) {
			q.Close(closeErr)
			src.send([]byte("late"))
			src.close()
		}},
		{"source closed, then queue", func(q *Queue, src *source) {
			src.close()
			synctest.Wait()
			q.Close(closeErr)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				src := newSource(8)
				q := NewQueue(4)
				done := make(chan struct{})
				q.ReceiveFrom(src, done)
				go src.send([]byte("a"))
				get(t, q, appCtx, "a") // the timer is armed now
				errc := make(chan error, 2)
				for range 2 {
					go func() {
						_, err := q.Get(appCtx)
						errc <- err
					}()
				}
				synctest.Wait()
				tt.end(q, src)
				for range 2 {
					if err := <-errc; !errors.Is(err, closeErr) {
						t.Errorf("Get() error = %v, want %v", err, closeErr)
					}
				}
				<-done
				if diff := cmp.Diff(Stats{Received: 1}, q.Stats()); diff != "" {
					t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
				}
			})
		})
	}
	t.Run("before ReceiveFrom", func(t *testing.T) {
		q := NewQueue(4)
		q.Close(closeErr)
		done := make(chan struct{})
		q.ReceiveFrom(newSource(8), done)
		<-done
		if _, err := q.Get(appCtx); !errors.Is(err, closeErr) {
			t.Errorf("Get() error = %v, want %v", err, closeErr)
		}
	})
	t.Run("drainer running", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			src := newSource(8)
			q := NewQueue(4)
			done := make(chan struct{})
			q.ReceiveFrom(src, done)
			src.send([]byte("queued"))
			time.Sleep(2 * takeoverDelay)
			synctest.Wait() // the drainer has queued it
			q.Close(closeErr)
			<-done
			if diff := cmp.Diff(Stats{Received: 1, Discarded: 1}, q.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
		})
	})
}

// TestSourceStress runs Gets that come and go against a paced source, in
// real time, so that datagrams go both ways, directly to a Get and through
// the drainer, and checks that every datagram is delivered at most once and
// in order per Get, and that the counts add up.
func TestSourceStress(t *testing.T) {
	const (
		consumers = 4
		sent      = 20000
	)
	src := newSource(128)
	q := NewQueue(32)
	done := make(chan struct{})
	q.ReceiveFrom(src, done)
	ctx, stop := context.WithCancel(appCtx)
	defer stop()
	var (
		cwg       sync.WaitGroup
		delivered atomic.Int64
	)
	for c := range consumers {
		cwg.Go(func() {
			last := int64(-1)
			for i := 1; ; i++ {
				b, err := q.Get(ctx)
				if err != nil {
					return
				}
				n := int64(binary.BigEndian.Uint64(b))
				if n <= last {
					t.Errorf("consumer %d: datagram %d after %d", c, n, last)
				}
				last = n
				delivered.Add(1)
				if i%(50+c) == 0 {
					// Away for longer than takeoverDelay now and then.
					time.Sleep(3 * takeoverDelay)
				}
			}
		})
	}
	for i := range sent {
		src.send(binary.BigEndian.AppendUint64(nil, uint64(i)))
		if i%64 == 63 {
			time.Sleep(100 * time.Microsecond)
		}
	}
	stop()
	cwg.Wait()
	q.Close(nil)
	<-done
	s := q.Stats()
	if n := uint64(delivered.Load()); s.Received != n+s.Dropped+s.Discarded || s.Queued != 0 {
		t.Errorf("Stats() = %+v with %d delivered; want Received = delivered + Dropped + Discarded, Queued = 0", s, n)
	}
	// Every datagram sent was taken from the source, dropped by it or left
	// in it; every one taken was counted, except at most one per Get and
	// one for the drainer that took one as Close ran.
	taken := uint64(src.direct.Load() + src.drained.Load())
	if got := taken + uint64(src.lost.Load()) + uint64(len(src.held)); got != sent {
		t.Errorf("taken from the source %d + lost in it %d + left in it %d = %d, want %d sent", taken, src.lost.Load(), len(src.held), got, sent)
	}
	if taken < s.Received || taken > s.Received+consumers+1 {
		t.Errorf("%d datagrams taken from the source, %d counted received: want at most %d taken uncounted, as Close ran", taken, s.Received, consumers+1)
	}
	if src.direct.Load() == 0 || src.drained.Load() == 0 {
		t.Errorf("%d datagrams went directly to a Get and %d through the drainer; want some of each", src.direct.Load(), src.drained.Load())
	}
	t.Logf("sent %d: received %d (delivered %d, dropped %d, discarded %d; %d directly, %d through the drainer), lost in the source %d",
		sent, s.Received, delivered.Load(), s.Dropped, s.Discarded, src.direct.Load(), src.drained.Load(), src.lost.Load())
}

func TestSourceGetDoesNotAllocate(t *testing.T) {
	src := newSource(8)
	q := NewQueue(4)
	done := make(chan struct{})
	q.ReceiveFrom(src, done)
	b := []byte("datagram")
	src.send(b)
	q.Get(appCtx) // the takeover timer is made once
	if allocs := testing.AllocsPerRun(1000, func() {
		src.send(b)
		q.Get(appCtx)
	}); allocs != 0 {
		t.Errorf("a Get receiving from the source: %v allocations, want 0", allocs)
	}
	q.Close(nil)
	<-done
}

// BenchmarkGetFromSource is a Get that receives a datagram the source
// already holds, beside the source's own ReceiveDatagram: the difference is
// what the queue adds per datagram to an application that keeps up.
func BenchmarkGetFromSource(b *testing.B) {
	d := []byte("datagram")
	b.Run("queue", func(b *testing.B) {
		src := newSource(1)
		q := NewQueue(128)
		done := make(chan struct{})
		q.ReceiveFrom(src, done)
		b.ReportAllocs()
		for b.Loop() {
			src.send(d)
			if _, err := q.Get(appCtx); err != nil {
				b.Fatal(err)
			}
		}
		q.Close(nil)
		<-done
	})
	b.Run("source", func(b *testing.B) {
		src := newSource(1)
		b.ReportAllocs()
		for b.Loop() {
			src.send(d)
			if _, err := src.ReceiveDatagram(appCtx); err != nil {
				b.Fatal(err)
			}
		}
	})
}
