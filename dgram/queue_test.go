package dgram

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/google/go-cmp/cmp"
	qerr "github.com/quicconn/quicconn/errors"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ended is a context that has already ended, so Get never waits on it.
var ended = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

// drain returns the queued datagrams as strings, oldest first.
func drain(q *Queue) []string {
	var got []string
	for {
		b, err := q.Get(ended)
		if err != nil {
			return got
		}
		got = append(got, string(b))
	}
}

func TestQueue(t *testing.T) {
	tests := []struct {
		name      string
		limit     int
		puts      int // datagrams "0", "1", ... put in order
		gets      int // datagrams taken before the check
		wantLen   int
		wantStats Stats
		wantRest  []string // what a drain returns afterwards
	}{{
		name:      "empty queue holds nothing",
		limit:     4,
		wantStats: Stats{},
	}, {
		name:      "FIFO below the limit",
		limit:     4,
		puts:      3,
		wantLen:   3,
		wantStats: Stats{Received: 3, Queued: 3},
		wantRest:  []string{"0", "1", "2"},
	}, {
		name:      "full queue drops the oldest",
		limit:     3,
		puts:      5,
		wantLen:   3,
		wantStats: Stats{Received: 5, Dropped: 2, Queued: 3},
		wantRest:  []string{"2", "3", "4"},
	}, {
		name:      "limit of one keeps the newest",
		limit:     1,
		puts:      3,
		wantLen:   1,
		wantStats: Stats{Received: 3, Dropped: 2, Queued: 1},
		wantRest:  []string{"2"},
	}, {
		name:      "Get frees room, so no drop",
		limit:     2,
		puts:      2,
		gets:      1,
		wantLen:   1,
		wantStats: Stats{Received: 2, Queued: 1},
		wantRest:  []string{"1"},
	}, {
		name:      "order survives ring growth past the initial size",
		limit:     100,
		puts:      50,
		gets:      0,
		wantLen:   50,
		wantStats: Stats{Received: 50, Queued: 50},
		wantRest:  seq(0, 50),
	}, {
		name:      "order survives drops after wrapping a non-power-of-two ring",
		limit:     10,
		puts:      37,
		wantLen:   10,
		wantStats: Stats{Received: 37, Dropped: 27, Queued: 10},
		wantRest:  seq(27, 37),
	}, {
		name:      "zero limit means 128",
		limit:     0,
		puts:      130,
		wantLen:   128,
		wantStats: Stats{Received: 130, Dropped: 2, Queued: 128},
		wantRest:  seq(2, 130),
	}, {
		name:      "negative limit means 128",
		limit:     -1,
		puts:      129,
		wantLen:   128,
		wantStats: Stats{Received: 129, Dropped: 1, Queued: 128},
		wantRest:  seq(1, 129),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(tt.limit)
			for i := range tt.puts {
				q.Put([]byte(strconv.Itoa(i)))
			}
			for range tt.gets {
				if _, err := q.Get(ended); err != nil {
					t.Fatalf("Get: %v", err)
				}
			}
			if got := q.Len(); got != tt.wantLen {
				t.Errorf("Len() = %d, want %d", got, tt.wantLen)
			}
			if diff := cmp.Diff(tt.wantStats, q.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantRest, drain(q)); diff != "" {
				t.Errorf("queued datagrams mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func seq(from, to int) []string {
	var s []string
	for i := from; i < to; i++ {
		s = append(s, strconv.Itoa(i))
	}
	return s
}

func TestPutKeepsTheSlice(t *testing.T) {
	q := NewQueue(1)
	b := []byte("datagram")
	q.Put(b)
	got, err := q.Get(ended)
	if err != nil || &got[0] != &b[0] {
		t.Fatalf("Get() = %p, %v; want the slice given to Put, %p", got, err, b)
	}
}

func TestClose(t *testing.T) {
	closeErr := errors.New("connection gone")
	tests := []struct {
		name      string
		errs      []error // one Close per entry
		puts      int     // before Close
		wantErr   error
		wantStats Stats
	}{{
		name:      "Get returns the close error and queued datagrams are discarded",
		errs:      []error{closeErr},
		puts:      3,
		wantErr:   closeErr,
		wantStats: Stats{Received: 3, Discarded: 3},
	}, {
		name:    "first error wins",
		errs:    []error{closeErr, errors.New("later")},
		wantErr: closeErr,
	}, {
		name:    "nil error means connection lost",
		errs:    []error{nil, closeErr},
		wantErr: qerr.ErrConnectionLost,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NewQueue(4)
			for range tt.puts {
				q.Put([]byte("x"))
			}
			for _, err := range tt.errs {
				q.Close(err)
			}
			q.Put([]byte("after close")) // dropped, not counted
			for range 2 {
				if b, err := q.Get(context.Background()); b != nil || !errors.Is(err, tt.wantErr) {
					t.Errorf("Get() = %q, %v; want nil, %v", b, err, tt.wantErr)
				}
			}
			if got := q.Len(); got != 0 {
				t.Errorf("Len() = %d, want 0", got)
			}
			if diff := cmp.Diff(tt.wantStats, q.Stats()); diff != "" {
				t.Errorf("Stats() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestCloseWakesWaitingGets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		closeErr := errors.New("connection gone")
		q := NewQueue(4)
		const waiters = 8
		errc := make(chan error, waiters)
		for range waiters {
			go func() {
				_, err := q.Get(context.Background())
				errc <- err
			}()
		}
		synctest.Wait() // all waiting
		if len(errc) != 0 {
			t.Fatal("Get returned from an empty, open queue")
		}
		q.Close(closeErr)
		for range waiters {
			if err := <-errc; !errors.Is(err, closeErr) {
				t.Errorf("Get() error = %v, want %v", err, closeErr)
			}
		}
	})
}

func TestPutWakesWaitingGet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		q := NewQueue(4)
		gotc := make(chan string, 2)
		for range 2 {
			go func() {
				b, err := q.Get(context.Background())
				if err != nil {
					t.Errorf("Get: %v", err)
				}
				gotc <- string(b)
			}()
		}
		synctest.Wait()
		q.Put([]byte("a"))
		synctest.Wait()
		if len(gotc) != 1 {
			t.Fatalf("one Put woke %d Gets, want 1", len(gotc))
		}
		q.Put([]byte("b"))
		got := []string{<-gotc, <-gotc}
		if got[0] != "a" || got[1] != "b" {
			t.Errorf("Gets returned %q, want [a b]", got)
		}
	})
}

func TestGetContext(t *testing.T) {
	cause := errors.New("caller gave up")
	tests := []struct {
		name    string
		ctx     func() (context.Context, context.CancelFunc)
		wantErr error
	}{{
		name:    "cancel returns context.Canceled",
		ctx:     func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
		wantErr: context.Canceled,
	}, {
		name: "cancel with cause returns the cause",
		ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancelCause(context.Background())
			return ctx, func() { cancel(cause) }
		},
		wantErr: cause,
	}, {
		name: "deadline returns context.DeadlineExceeded",
		ctx: func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
			return ctx, func() { time.Sleep(2 * time.Hour); cancel() } // fake time
		},
		wantErr: context.DeadlineExceeded,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				q := NewQueue(4)
				ctx, end := tt.ctx()
				errc := make(chan error, 1)
				go func() {
					_, err := q.Get(ctx)
					errc <- err
				}()
				synctest.Wait()
				end()
				if err := <-errc; !errors.Is(err, tt.wantErr) {
					t.Fatalf("Get() error = %v, want %v", err, tt.wantErr)
				}
				// The Get that gave up left no claim behind: the next
				// datagram goes to the next Get.
				q.Put([]byte("next"))
				if b, err := q.Get(ended); string(b) != "next" || err != nil {
					t.Errorf("Get() after a canceled Get = %q, %v; want next, nil", b, err)
				}
			})
		})
	}
}

// TestGetContextLatency measures in real time how soon a waiting Get returns
// once its context ends.
func TestGetContextLatency(t *testing.T) {
	const timeout = 5 * time.Millisecond
	q := NewQueue(4)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	_, err := q.Get(ctx)
	late := time.Since(start) - timeout
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get() error = %v, want context.DeadlineExceeded", err)
	}
	// A few ms in practice; the slack covers loaded CI machines under -race.
	if late > 50*time.Millisecond {
		t.Errorf("Get returned %v after its deadline", late)
	}
	t.Logf("Get returned %v after its deadline", late)
}

func TestGetPrefersQueuedOverEndedContext(t *testing.T) {
	q := NewQueue(4)
	q.Put([]byte("a"))
	if b, err := q.Get(ended); string(b) != "a" || err != nil {
		t.Fatalf("Get(ended) = %q, %v; want a, nil", b, err)
	}
	if _, err := q.Get(ended); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get(ended) on empty queue error = %v, want context.Canceled", err)
	}
}

// TestStress runs producers and consumers at once against a small queue and
// closes it while producers are still running. Each datagram carries its
// producer and sequence number, so the test proves that none is delivered
// twice, that each consumer sees each producer's datagrams in order, and, with
// the counts, that none is lost: received == delivered + dropped + discarded.
func TestStress(t *testing.T) {
	const (
		producers = 8
		consumers = 8
		perProd   = 5000
	)
	q := NewQueue(16)
	var (
		half, pwg, cwg sync.WaitGroup
		mu             sync.Mutex
		delivered      = make(map[uint64]bool)
	)
	half.Add(producers)
	for p := range producers {
		pwg.Add(1)
		go func() {
			defer pwg.Done()
			for i := range perProd {
				if i == perProd/2 {
					half.Done()
				}
				b := make([]byte, 8)
				binary.BigEndian.PutUint64(b, uint64(p)<<32|uint64(i))
				q.Put(b)
			}
		}()
	}
	ctx, stopConsumers := context.WithCancel(context.Background())
	defer stopConsumers()
	for range consumers {
		cwg.Add(1)
		go func() {
			defer cwg.Done()
			last := make([]int64, producers+1)
			for i := range last {
				last[i] = -1
			}
			var got []uint64
			for {
				b, err := q.Get(ctx)
				if err != nil {
					if !errors.Is(err, context.Canceled) {
						t.Errorf("Get: %v", err)
					}
					break
				}
				id := binary.BigEndian.Uint64(b)
				p, i := id>>32, int64(id&(1<<32-1))
				if i <= last[p] {
					t.Errorf("producer %d: datagram %d after %d", p, i, last[p])
				}
				last[p] = i
				got = append(got, id)
			}
			mu.Lock()
			defer mu.Unlock()
			for _, id := range got {
				if delivered[id] {
					t.Errorf("datagram %#x delivered twice", id)
				}
				delivered[id] = true
			}
		}()
	}
	// Stop the consumers mid-stream, queue one datagram of our own so that
	// at least one is discarded, and close while producers may still put.
	half.Wait()
	stopConsumers()
	cwg.Wait()
	q.Put(binary.BigEndian.AppendUint64(nil, producers<<32))
	q.Close(errors.New("closed"))
	pwg.Wait()

	s := q.Stats()
	n := uint64(len(delivered))
	if s.Received != n+s.Dropped+s.Discarded || s.Queued != 0 || s.Discarded == 0 {
		t.Errorf("Stats() = %+v with %d delivered; want Received = delivered + Dropped + Discarded, Discarded > 0, Queued = 0", s, n)
	}
	t.Logf("received %d: delivered %d, dropped %d, discarded %d", s.Received, n, s.Dropped, s.Discarded)
}

func TestPutGetDoNotAllocate(t *testing.T) {
	q := NewQueue(64)
	b := []byte("datagram")
	ctx := context.Background()
	// Grow the ring to its working size first.
	for range 64 {
		q.Put(b)
	}
	drain(q)
	tests := []struct {
		name string
		op   func()
	}{
		{"Put then Get", func() { q.Put(b); q.Get(ctx) }},
		{"Put on a full queue", func() {
			for range 65 {
				q.Put(b)
			}
			for range 64 {
				q.Get(ctx)
			}
		}},
		{"Stats and Len", func() { q.Stats(); q.Len() }},
	}
	for _, tt := range tests {
		if allocs := testing.AllocsPerRun(1000, tt.op); allocs != 0 {
			t.Errorf("%s: %v allocations per run, want 0", tt.name, allocs)
		}
	}
}

func TestIdleQueueIsSmall(t *testing.T) {
	// The ring is allocated at the first Put, not by NewQueue.
	if q := NewQueue(128); q.ring != nil {
		t.Errorf("NewQueue allocated a ring of %d slots", len(q.ring))
	}
	q := NewQueue(128)
	q.Put(nil)
	if len(q.ring) != minRing {
		t.Errorf("first Put grew the ring to %d slots, want %d", len(q.ring), minRing)
	}
}

func BenchmarkPutGet(b *testing.B) {
	q := NewQueue(128)
	d := make([]byte, 1200)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		q.Put(d)
		if _, err := q.Get(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPutGetHandoff measures one producer and one consumer goroutine,
// the shape of a connection's pump feeding ReceiveDatagram.
func BenchmarkPutGetHandoff(b *testing.B) {
	q := NewQueue(128)
	d := make([]byte, 1200)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if _, err := q.Get(context.Background()); err != nil {
				return
			}
		}
	}()
	b.ReportAllocs()
	for b.Loop() {
		q.Put(d)
	}
	q.Close(nil)
	<-done
}
